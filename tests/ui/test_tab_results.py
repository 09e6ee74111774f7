"""Tab 6 on real recorded sessions: metrics, confusion matrices, boundary, curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from analysis_runs import HOSTILE, record_moons, record_odd_names, record_sine
from bokeh.models import PlainText

from engine import events as ev
from engine.network import forward
from ui.state import AppState
from ui.tabs.results import GRID_SIZE, ResultsTab


def _tab(path: Path) -> ResultsTab:
    state = AppState()
    assert state.open(path), state.message
    tab = ResultsTab(state=state)
    state.tab = tab.index
    return tab


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("results")
    return {
        "moons": record_moons(folder),
        "sine": record_sine(folder),
        "odd": record_odd_names(folder),
    }


def _independent_accuracy(tab: ResultsTab, params: list, split: str) -> float:
    """Accuracy from a fresh forward pass, written out without ui.metrics."""
    session = tab.state.session
    data = session.dataset
    X, y = (
        (data.X_train, data.y_train) if split == "train" else (data.X_test, data.y_test)
    )
    y_hat = forward(params, X, session.spec.activations()).y_hat
    return float(((y_hat[:, 0] >= 0.5) == (y[:, 0] >= 0.5)).mean())


def test_accuracy_follows_the_cursor_and_equals_a_fresh_forward_pass(runs) -> None:
    tab = _tab(runs["moons"])
    session = tab.state.session
    shown = {}
    for step in (0, 7):
        tab.state.go_to(step)
        params = session.state_before(step).params
        for split in ("train", "test"):
            expected = _independent_accuracy(tab, params, split)
            assert tab.accuracy(split) == pytest.approx(expected, abs=1e-12)
            span = f"glassnet-accuracy-{split}'>{expected:.4f}</span>"
            assert span in tab._tables.object
        shown[step] = tab._tables.object
    assert shown[0] != shown[7]


def test_recorded_epoch_accuracy_agrees_with_the_next_steps_parameters(runs) -> None:
    # EpochCompleted is measured after the update of the epoch's last step,
    # so it equals what the tab shows one step later (before that update).
    tab = _tab(runs["moons"])
    session = tab.state.session
    epochs = session.epochs()
    assert len(epochs.step) == 6
    # Training metrics taken over the epoch's batches (the default) come from
    # several steps' parameters: only an evaluation pass matches one step.
    splits = ["test"]
    if session.config.train_metrics == "evaluation":
        splits.append("train")
    else:
        hits = np.zeros(len(epochs.step))
        for s in range(session.n_steps):
            for e in session.step_events(s):
                if isinstance(e, ev.LossComputed):
                    right = (e.y_hat[:, 0] >= 0.5) == (e.y[:, 0] >= 0.5)
                    hits[e.epoch] += right.sum()
        np.testing.assert_array_equal(
            epochs.train["accuracy"], hits / session.dataset.n_train
        )
    for i, end in enumerate(epochs.step):
        for split in splits:
            recorded = getattr(epochs, split)["accuracy"][i]
            if end + 1 < session.n_steps:
                tab.state.go_to(end + 1)
                assert tab.accuracy(split) == pytest.approx(recorded, abs=1e-12)
            after = session.params_after(int(end))
            assert _independent_accuracy(tab, after, split) == pytest.approx(recorded)
    # On the epoch's last step the summary quotes the recorded numbers.
    tab.state.go_to(int(epochs.step[2]))
    assert "This step ends epoch 3" in tab._summary.object
    assert f"accuracy {epochs.train['accuracy'][2]:.4f}" in tab._summary.object


def test_confusion_matrix_counts_match_the_predictions(runs) -> None:
    tab = _tab(runs["moons"])
    tab.state.go_to(5)
    data = tab.state.session.dataset
    y_hat = tab.state.predict("train").y_hat
    pred = (y_hat[:, 0] >= 0.5).astype(int)
    true = data.y_train[:, 0].astype(int)
    source = tab._confusion["train"]["source"].data
    xyc = zip(source["x"], source["y"], source["count"], strict=True)
    cells = {(x, y): c for x, y, c in xyc}
    # Row 0 (true class 0) is drawn at the top: y = 1.
    assert cells[(0, 1)] == int(((true == 0) & (pred == 0)).sum())
    assert cells[(1, 1)] == int(((true == 0) & (pred == 1)).sum())
    assert cells[(1, 0)] == int(((true == 1) & (pred == 1)).sum())
    assert sum(source["count"]) == data.n_train
    assert sum(tab._confusion["test"]["source"].data["count"]) == data.n_test


def test_decision_boundary_only_for_two_features(runs, demo_dir: Path) -> None:
    tab = _tab(runs["moons"])
    tab.state.go_to(3)
    assert tab._boundary["box"].visible
    image = tab._boundary["image"].data["image"][0]
    assert image.shape == (GRID_SIZE, GRID_SIZE)
    # The grid's corner is the network's output there, at the step's parameters.
    x0, y0 = tab._boundary["image"].data["x"][0], tab._boundary["image"].data["y"][0]
    params = tab.state.session.state_before(3).params
    corner = forward(params, np.array([[x0, y0]]), tab.state.session.spec.activations())
    assert image[0, 0] == pytest.approx(corner.y_hat[0, 0])
    # The grid covers every point.
    data = tab.state.session.dataset
    assert x0 < data.X_train[:, 0].min() and y0 < data.X_train[:, 1].min()
    tab.state.go_to(9)
    assert not np.array_equal(tab._boundary["image"].data["image"][0], image)
    assert len(tab._boundary["points"]["train"].data["x"]) == data.n_train

    iris = _tab(demo_dir / "demo.session")
    assert not iris._boundary["box"].visible
    assert iris.boundary_grid() is None


def test_regression_shows_predicted_against_actual_and_scores(runs) -> None:
    tab = _tab(runs["sine"])
    assert tab._regression["pane"].visible and not tab._confusion_row.visible
    assert not tab._boundary["box"].visible
    for step in (0, 6):
        tab.state.go_to(step)
        data = tab.state.session.dataset
        params = tab.state.session.state_before(step).params
        y_hat = forward(
            params, data.X_train, tab.state.session.spec.activations()
        ).y_hat
        mse = float(((y_hat - data.y_train) ** 2).mean())
        ss_tot = float(((data.y_train - data.y_train.mean()) ** 2).sum())
        r2 = 1 - float(((y_hat - data.y_train) ** 2).sum()) / ss_tot
        assert f"<td>train</td><td>{mse:.4g}</td>" in tab._tables.object
        assert f"<td>{r2:.4f}</td>" in tab._tables.object
        points = tab._regression["points"]["train"].data
        assert np.allclose(points["y"], y_hat.ravel())
        assert np.array_equal(points["x"], data.y_train.ravel())


def test_curves_mark_the_cursor_and_hold_the_recorded_epochs(runs) -> None:
    tab = _tab(runs["moons"])
    epochs = tab.state.session.epochs()
    source = tab._curves["accuracy_train"].data
    assert list(source["x"]) == list(epochs.step + 1)
    assert list(source["y"]) == list(epochs.train["accuracy"])
    tab.state.go_to(6)
    assert tab._curves["accuracy_span"].location == 6
    assert tab._curves["loss_span"].location == 6
    dot = tab._curves["accuracy_dot"].data
    assert dot["x"] == [6, 6] and dot["y"][0] == pytest.approx(tab.accuracy("train"))


def test_names_are_text_and_an_empty_test_part_is_said(runs) -> None:
    tab = _tab(runs["odd"])
    text = tab._tables.object + tab._boundary["legend"].object
    assert "<script>" not in text and "<b>bold" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "The test part is empty" in tab._summary.object
    assert not tab._confusion["test"]["pane"].visible
    fig = tab._confusion["train"]["fig"]
    labels = fig.xaxis[0].major_label_overrides
    assert isinstance(labels[0], PlainText) and labels[0].text == HOSTILE
    axis = tab._boundary["fig"].xaxis[0].axis_label
    assert isinstance(axis, PlainText) and axis.text == HOSTILE
