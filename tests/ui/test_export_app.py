"""Exports in the app, without a browser: download buttons and PNG names."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import panel as pn
import pytest
from bokeh.models import Plot, SaveTool

from engine import events as ev
from sessions import SessionError
from sessions.export import metrics_csv
from ui.export import PlotFileNames
from ui.state import AppState
from ui.tabs import TABS, ForwardTab, ResultsTab, TrainingTab
from ui.tabs.forward import FORWARD_KINDS


@pytest.fixture(scope="module")
def session_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Record a small two-feature run, so every plot of every tab is drawn."""
    from ui.cli import main

    path = tmp_path_factory.mktemp("app") / "moons.session"
    args = ["record", "--dataset", "moons", "--epochs", "2", "--batch-size", "40"]
    args += ["--hidden", "4,3", "--dropout", "0.1", "--optimizer", "adam"]
    assert main([*args, "--out", str(path), "--quiet"]) == 0
    return path


def _state(path: Path) -> AppState:
    state = AppState()
    assert state.open(path)
    return state


def _shown(tab_class: type, path: Path, step: int) -> tuple[AppState, Any]:
    """Return a state on ``step`` of ``path`` and a tab of ``tab_class``, shown."""
    state = _state(path)
    tab = tab_class(state=state)
    state.tab = tab.index
    state.go_to(step)
    return state, tab


def _op(state: AppState, kind: type[ev.Event], layer: int | None) -> int:
    """Return the position in the step of the first event of ``kind`` and layer."""
    return next(
        i
        for i, e in enumerate(state.events)
        if isinstance(e, kind) and e.layer == layer
    )


def test_every_plot_of_every_tab_saves_a_png_named_after_session_and_step(
    session_file: Path,
) -> None:
    state = _state(session_file)
    tabs = pn.Tabs(*[(t.title, t(state=state)) for t in TABS])
    PlotFileNames(state, tabs)
    state.go_to(6)
    seen = 0
    for index in range(len(TABS)):
        state.tab = index
        names = []
        for pane in tabs.objects[index].select(pn.pane.Bokeh):
            for fig in pane.object.select({"type": Plot}):
                tools = list(fig.select({"type": SaveTool}))
                assert len(tools) == 1, f"a plot of tab {index + 1} cannot be saved"
                names.append(tools[0].filename)
        assert all(n.startswith("moons_step6_") and n.endswith(".png") for n in names)
        assert len(set(names)) == len(names), names
        seen += len(names)
    assert seen >= 15
    # The names follow the cursor.
    state.go_to(7)
    pane = tabs.objects[state.tab].select(pn.pane.Bokeh)[0]
    (tool,) = pane.object.select({"type": SaveTool})
    assert tool.filename.startswith("moons_step7_")


def test_every_tab_renders_on_its_own_as_in_a_notebook(session_file: Path) -> None:
    state = _state(session_file)
    for tab_class in TABS:
        state.tab = tab_class.index
        tab = tab_class(state=state)
        tab.refresh()
        # What a notebook does to show a Panel object: build its Bokeh model.
        root = pn.panel(tab).get_root()
        figures = [
            fig
            for pane in tab.__panel__().select(pn.pane.Bokeh)
            for fig in pane.object.select({"type": Plot})
        ]
        shown = list(root.select({"type": Plot}))
        assert all(fig in shown for fig in figures), tab_class.title


def test_forward_tab_downloads_the_cursor_s_array_as_npy(session_file: Path) -> None:
    state, tab = _shown(ForwardTab, session_file, 3)
    state.op = _op(state, ev.ActivationComputed, 1)
    download = tab.array_download
    assert download.select.value.startswith("activation a = tanh(z) of layer 2: a ")
    data = download.button.callback()
    assert download.button.filename == "moons_step3_activation_computed_layer2_a.npy"
    event = state.events[state.op]
    assert np.array_equal(np.load(data, allow_pickle=False), event.a)

    # Every array offered belongs to a forward event of the step.
    kinds = {event.kind for event, _ in download._choices.values()}
    assert kinds <= set(FORWARD_KINDS) and "dropout_applied" in kinds
    # A choice the user makes is kept while the cursor is on another operation.
    choice = next(c for c in download.select.options if ": W " in c)
    download.select.value = choice
    state.op = _op(state, ev.LossComputed, None)
    assert download.select.value == choice
    data = download.button.callback()
    assert download.button.filename == "moons_step3_weighted_sum_computed_layer1_W.npy"
    first = state.events[_op(state, ev.WeightedSumComputed, 0)]
    assert np.array_equal(np.load(data, allow_pickle=False), first.W)


def test_training_tab_downloads_gradients_and_updates(session_file: Path) -> None:
    state, tab = _shown(TrainingTab, session_file, 2)
    state.op = _op(state, ev.ParametersUpdated, 2)
    download = tab.array_download
    data = download.button.callback()
    assert download.button.filename == (
        "moons_step2_parameters_updated_layer3_W_after.npy"
    )
    assert np.array_equal(np.load(data), state.events[state.op].after)
    state.op = _op(state, ev.GradientComputed, None)
    data = download.button.callback()
    assert download.button.filename == (
        "moons_step2_gradient_computed_dy_hat_value.npy"
    )
    assert np.array_equal(np.load(data), state.events[state.op].value)


def test_results_tab_downloads_the_metrics_and_a_notebook(session_file: Path) -> None:
    state = _state(session_file)
    tab = ResultsTab(state=state)
    state.go_to(4)
    csv_button, notebook_button, file_button = tab._layout[1]
    data = csv_button.callback()
    assert csv_button.filename == "moons_metrics_steps0-7.csv"
    assert data.getvalue().decode("utf-8") == metrics_csv(state.session)
    book = json.load(io.TextIOWrapper(notebook_button.callback(), "utf-8"))
    assert notebook_button.filename == "moons_step4.ipynb"
    assert book["metadata"]["glassnet"] == {"session": "moons.session", "step": 4}
    assert 'SESSION_FILE = Path("moons.session")' in book["cells"][1]["source"]
    # The session itself, to keep beside the notebook.
    data = file_button.callback()
    assert file_button.filename == "moons.session"
    assert data.getvalue() == session_file.read_bytes()


def test_session_file_download_waits_for_the_run_to_end(
    session_file: Path, tmp_path: Path
) -> None:
    # A copy of a finished run, its end row removed: as if still recording.

    live = tmp_path / "live.session"
    live.write_bytes(session_file.read_bytes())
    with sqlite3.connect(live) as con:
        con.execute("DELETE FROM events WHERE kind = 'session_ended'")
    con.close()
    state = _state(live)
    assert state.session.status == "incomplete"
    file_button = ResultsTab(state=state)._layout[1][2]
    with pytest.raises(SessionError):
        file_button.callback()
    assert "live.session is still being recorded" in state.message


def test_a_download_without_a_session_says_so(session_file: Path) -> None:
    state = AppState()
    tab = ResultsTab(state=state)
    csv_button = tab._layout[1][0]
    with pytest.raises(SessionError):
        csv_button.callback()
    assert state.message == "No session is open: open one in the library first."
    forward = ForwardTab(state=state)
    forward.refresh()
    assert forward.array_download.button.disabled
