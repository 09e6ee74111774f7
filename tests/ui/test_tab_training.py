"""Tab 5 without a browser: train live, stop, bad settings, gradients, updates."""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np
import pytest

from engine import LayerSpec, NetworkSpec, TrainingConfig
from engine import events as ev
from engine.optimizers import OPTIMIZERS
from sessions import Session, record, verify
from sessions.datasets import load_dataset
from ui import explain
from ui.state import AppState
from ui.tabs.training import TrainingTab, expand_update, parse_dropout


def _tiny(path: Path, optimizer: str = "adam", **extra: object) -> Path:
    data = load_dataset("moons", n_samples=40, seed=0)  # 32 train rows
    spec = NetworkSpec(2, (LayerSpec(3, "tanh"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(
        loss="binary_cross_entropy",
        optimizer=optimizer,
        lr=0.05,
        epochs=2,
        batch_size=None if optimizer == "gd" else 8,
        **extra,
    )
    record(spec, config, data, path)
    return path


@pytest.fixture
def tab(tmp_path: Path) -> TrainingTab:
    state = AppState(sessions_dir=str(tmp_path / "runs"))
    assert state.open(_tiny(tmp_path / "open.session"))
    tab = TrainingTab(state=state)
    state.tab = tab.index
    return tab


def follow(tab: TrainingTab, timeout: float = 60.0) -> list[int]:
    """Call the periodic callback until the job ended; return n_steps seen.

    Only the steps of the new run count: until its file has a step, the
    state still shows the session that was open before.
    """
    seen = []
    deadline = time.monotonic() + timeout
    while tab._poll is not None:
        tab.poll()
        job = tab.job
        if job is not None and tab.state.session.path == job.path:
            seen.append(tab.state.n_steps)
        if time.monotonic() > deadline:
            pytest.fail("the run did not end")
        time.sleep(0.02)
    return seen


def test_form_starts_from_the_open_session(tab: TrainingTab) -> None:
    assert tab.optimizer.value == "adam"
    assert tab.lr.value == 0.05
    assert tab.batch_size.value == 8 and not tab.full_batch.value
    assert tab.loss.value == "binary_cross_entropy"
    # Only Adam's settings are shown.
    assert [w.name for w in tab._optimizer_row if w.visible] == [
        "beta1",
        "beta2",
        "eps",
    ]
    tab.optimizer.value = "momentum"
    assert [w.name for w in tab._optimizer_row if w.visible] == ["momentum"]


def test_train_records_a_new_session_and_the_state_follows_it(
    tab: TrainingTab,
) -> None:
    tab.epochs.value = 30
    tab.run_title.value = "<b>live</b>"
    old = tab.state.session.path
    figure, source = tab.curve_pane.object, tab.curve_source
    assert tab.start_run()
    seen = follow(tab)
    # The curve grew in the same figure and data source.
    assert tab.curve_pane.object is figure and tab.curve_source is source
    job = tab.job
    assert job.status == "completed"
    assert job.path.parent == Path(tab.state.sessions_dir)
    assert tab.state.session.path == job.path != old
    assert tab.state.n_steps == 120 == job.total_steps
    assert tab.state.session.status == "completed"
    assert seen[-1] == 120 and seen == sorted(seen)
    assert tab.state.param.step.bounds == (0, 119)
    # Progress, loss curve and title.
    assert "completed" in tab.progress.object
    assert "Step 120 of 120" in tab.progress.object
    assert tab.state.session.title == "<b>live</b>"
    series = tab.state.session.series()
    np.testing.assert_array_equal(tab.curve_source.data["loss"], series.loss)
    assert not tab.train_button.disabled and tab.stop_button.disabled


def test_stop_keeps_what_ran_and_the_file_verifies(tab: TrainingTab) -> None:
    tab.epochs.value = 5000
    assert tab.start_run()
    deadline = time.monotonic() + 60
    while tab.state.session.path != tab.job.path or tab.state.n_steps < 3:
        tab.poll()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    tab.stop_button.clicks += 1
    follow(tab)
    assert tab.job.status == "stopped"
    assert tab.state.session.status == "stopped"
    assert 3 <= tab.state.n_steps < 20000
    assert "stopped" in tab.progress.object
    assert verify(tab.job.path).ok


def test_a_second_train_while_one_runs_is_refused(tab: TrainingTab) -> None:
    tab.epochs.value = 5000
    assert tab.start_run()
    first = tab.job
    assert not tab.start_run()
    assert "already training" in tab.message.object
    assert tab.job is first
    first.stop()
    follow(tab)


@pytest.mark.parametrize(
    ("widget", "value", "words"),
    [
        ("lr", 0.0, "lr (learning rate) must be a number in (0.0"),
        ("lr", -1.0, "lr (learning rate) must be a number in (0.0"),
        ("epochs", 0, "Epochs must be a whole number >= 1; got 0"),
        ("epochs", -5, "Epochs must be a whole number >= 1; got -5"),
        ("l2", -0.5, "l2 must be a number in [0.0"),
        ("dropout", "1.0", "dropout 1.0"),
        ("seed", -1, "seed must be a whole number >= 0"),
        ("dropout", "a lot", "is not a number"),
        ("dropout", "0.1, 0.2", "network has 1 hidden layers"),
        ("dropout", "1.5", "dropout"),
        ("loss", "categorical_cross_entropy", "needs one output per class"),
        ("beta1", 1.0, "beta1 must be"),
    ],
)
def test_bad_settings_show_a_message_and_start_nothing(
    tab: TrainingTab, widget: str, value: object, words: str
) -> None:
    getattr(tab, widget).value = value
    assert not tab.start_run()
    assert tab.job is None
    assert words.lower() in html.unescape(tab.message.object).lower()
    assert "Traceback" not in tab.message.object
    assert not Path(tab.state.sessions_dir).exists() or not any(
        Path(tab.state.sessions_dir).iterdir()
    )


def test_batch_size_0_is_refused_with_a_message(tab: TrainingTab) -> None:
    tab.full_batch.value = False
    tab.batch_size.value = 0
    assert not tab.start_run()
    assert tab.job is None
    assert "batch_size must be a whole number >= 1" in html.unescape(tab.message.object)


def test_settings_widgets_never_clamp_or_revert_what_is_typed(
    tab: TrainingTab,
) -> None:
    # A bound makes the browser silently replace a typed value (epochs 0 ran
    # 30 epochs): the form has none, Train checks the values instead.
    for name in ("epochs", "lr", "batch_size", "seed", "l2"):
        widget = getattr(tab, name)
        assert widget.start is None, name
        assert widget.end is None, name


def test_hand_set_initial_values_start_the_run(tab: TrainingTab) -> None:
    tab.state.initial_values = {(0, "W", (1, 2)): 0.625, (1, "b", 0): -0.25}
    tab.epochs.value = 1
    assert tab.start_run()
    follow(tab)
    tab.state.go_to(0)
    inits = tab.state.events_of(ev.ParametersInitialized)
    assert inits[0].W[1, 2] == 0.625
    assert inits[1].b[0] == -0.25
    assert tab.state.session.meta["initial_values"][0]["value"] == 0.625
    assert verify(tab.job.path).ok


def test_divergence_is_explained_in_plain_words(tab: TrainingTab) -> None:
    # The network of tab 1 and the data of tab 2 replace the open session's.
    tab.state.design = NetworkSpec(1, (LayerSpec(8, "relu"), LayerSpec(1, "linear")))
    tab.state.data = load_dataset("sine", n_samples=40, seed=0)
    assert tab.loss.value == "mse"  # the loss that fits the new data
    tab.lr.value = 1e6
    tab.optimizer.value = "sgd"
    tab.epochs.value = 50
    assert tab.start_run()
    follow(tab)
    assert tab.job.status == "diverged"
    assert tab.state.session.spec.n_in == 1
    text = html.unescape(tab.message.object)
    assert "Training diverged" in text
    assert "smaller learning rate" in text


def test_gradients_of_the_cursor_step_show_recorded_norms(tab: TrainingTab) -> None:
    tab.state.go_to(3)
    grads = {
        (e.layer, e.name): e.value for e in tab.state.events_of(ev.GradientComputed)
    }
    shown = tab.gradients.object
    for layer in (0, 1):
        norm = float(np.sqrt(np.sum(grads[(layer, "dW")] ** 2)))
        assert f"|dW| = {explain.fmt(norm)}" in shown
        assert explain.fmt(grads[(layer, "dW")][0, 0], 3) in shown
    # The chosen weight's update, on the same step.
    # Layer 1 on screen is the event's layer 0.
    # W[i, j] joins input i to unit j, both from 1: W[2, 3] is index (1, 2).
    tab.pick_layer.value, tab.pick_i.value, tab.pick_j.value = 1, 2, 3
    upd = next(
        e
        for e in tab.state.events_of(ev.ParametersUpdated)
        if e.layer == 0 and e.name == "W"
    )
    text = html.unescape(tab.update_pane.object)
    assert text.startswith("<pre>W[2, 3] of layer 1")
    assert explain.fmt(upd.before[1, 2]) in text
    assert "(matches the formula)" in text
    tab.pick_layer.value = 7
    assert "Layer 7 does not exist; choose 1 to 2." in tab.update_pane.object
    tab.pick_layer.value, tab.pick_j.value = 1, 4
    assert "choose i from 1 to 2 and j from 1 to 3" in tab.update_pane.object
    tab.pick_j.value = 0
    assert "choose i from 1 to 2 and j from 1 to 3" in tab.update_pane.object
    # Headings count layers from 1, like the cursor's "update of W of layer 1".
    assert "<h4>Layer 1 (W 2 x 3)" in shown and "<h4>Layer 2 (W 3 x 1)" in shown
    assert "Layer 0" not in shown


def test_parse_dropout() -> None:
    assert parse_dropout("0.2", 3) == [0.2, 0.2, 0.2]
    assert parse_dropout("0.1, 0.3", 2) == [0.1, 0.3]
    assert parse_dropout("", 2) == [0.0, 0.0]


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_update_expansion_reproduces_every_recorded_after(
    tmp_path: Path, optimizer: str
) -> None:
    path = _tiny(tmp_path / f"{optimizer}.session", optimizer, l2=0.01)
    with Session(path) as session:
        config = session.config
        for step in (0, session.n_steps - 1):
            before = session.state_before(step)
            for e in session.step_events(step):
                if not isinstance(e, ev.ParametersUpdated):
                    continue
                for index in np.ndindex(e.before.shape):
                    prev = {
                        k: float(v[index])
                        for k, v in before.opt_state[e.layer][e.name].items()
                    }
                    x = expand_update(e, index, config, prev)
                    assert x.value == x.recorded == float(e.after[index])
                # One entry's text carries the recorded numbers.
                index = (0, 0) if e.name == "W" else (0,)
                prev = {
                    k: float(v[index])
                    for k, v in before.opt_state[e.layer][e.name].items()
                }
                text = str(expand_update(e, index, config, prev))
                assert explain.fmt(e.before[index]) in text
                assert explain.fmt(e.grad[index]) in text
                assert f"= {explain.fmt(e.after[index])}\n" in text
                assert "matches the formula" in text
                for name, value in e.state.items():
                    assert explain.fmt(value[index]) in text, name
                for name in ("velocity", "s", "m", "v"):
                    if name in prev:
                        assert f"x {explain.fmt(prev[name])} +" in text, name


def test_the_cursor_on_an_update_picks_that_parameter(tab: TrainingTab) -> None:
    tab.state.go_to(1)
    ops = tab.state.events
    seq = next(
        k
        for k, e in enumerate(ops)
        if isinstance(e, ev.ParametersUpdated) and e.layer == 1 and e.name == "b"
    )
    tab.state.op = seq
    assert (tab.pick_layer.value, tab.pick_param.value) == (2, "b")
    assert html.unescape(tab.update_pane.object).startswith("<pre>b[1] of layer 2")
    # On a gradient of layer 0 that layer's cells are outlined.
    tab.state.op = next(
        k
        for k, e in enumerate(ops)
        if isinstance(e, ev.GradientComputed) and e.layer == 0
    )
    first, second = tab.gradients.object.split("<h4>Layer 2")
    assert "gn-now" in first and "gn-now" not in second


CASE32 = b"""duration,protocol,bytes,label
0,tcp,181,0
2,udp,239,0
0,icmp,520,1
1,tcp,1032,1
5,udp,44,0
"""
"""A binary CSV whose text column one-hot encodes to 5 features."""


@pytest.mark.parametrize("tab1_built", [True, False])
def test_a_csv_uploaded_on_tab_2_trains_on_tab_5(
    demo_dir: Path, tmp_path: Path, tab1_built: bool
) -> None:
    from ui.tabs.dataset import DatasetTab
    from ui.tabs.network import NetworkTab

    # The demo (Iris, 4-16-3 softmax) is open; tab 1 is not visible.
    state = AppState(sessions_dir=str(tmp_path / "runs"))
    network = NetworkTab(state=state) if tab1_built else None
    dataset = DatasetTab(state=state)
    training = TrainingTab(state=state)
    assert state.open(demo_dir / "demo.session")
    state.tab = dataset.index
    assert dataset.import_bytes(CASE32, "case32.csv")
    assert state.data.n_features == 5 and state.data.task == "binary"
    summary = html.unescape(dataset.summary.object)
    assert "Dataset of the next run: case32.csv" in summary
    assert "iris" not in summary
    assert "now the dataset of the next run" in dataset.report_pane.object
    if network is not None:
        # Tab 1 followed the data at once and says what it changed.
        assert state.design.sizes == (5, 16, 1)
        assert state.design.activations()[-1].name == "sigmoid"
        assert state.design.layers[0].activation == "relu"
        state.tab = network.index
        text = html.unescape(network.messages.object)
        assert "changed to fit the dataset case32.csv" in text
        assert "4 inputs, output 3 softmax unit(s) -> 5 inputs" in text
        assert network.n_in.value == 5
        assert [row.units.value for row in network._rows] == [16, 1]
    state.tab = training.index
    training.epochs.value = 2
    assert training.start_run(), training.message.object
    note = html.unescape(training.fit_note.object)
    assert "loss binary_cross_entropy" in note and "Full batch is ticked" in note
    follow(training)
    job = training.job
    assert job.status == "completed", job.message
    spec = state.session.spec
    assert state.session.path == job.path
    assert spec.sizes == (5, 16, 1)
    assert spec.activations()[-1].name == "sigmoid"
    assert state.session.config.loss == "binary_cross_entropy"
