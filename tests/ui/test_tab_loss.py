"""Tab 4 without a browser: per-sample losses, expansions and the run's curve."""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import record_run

from engine import events as ev
from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import record
from sessions.datasets import load_dataset
from ui import explain
from ui.state import AppState
from ui.tabs.forward import ForwardTab
from ui.tabs.loss import MAX_CURVE_POINTS, LossTab, decimate


@pytest.fixture
def tab(demo_dir: Path) -> LossTab:
    state = AppState(sessions_dir=str(demo_dir))
    assert state.open(demo_dir / "demo.session")
    tab = LossTab(state=state)
    state.tab = tab.index
    return tab


def _loss(state: AppState) -> ev.LossComputed:
    return state.events_of(ev.LossComputed)[0]


def test_batch_losses_in_bars_table_and_expansions(tab: LossTab) -> None:
    state = tab.state
    state.go_to(9)
    state.sample = 4
    rec = _loss(state)
    assert tab.help in html.unescape(tab.help_pane.object)
    np.testing.assert_array_equal(tab.bars.data["loss"], rec.per_sample)
    np.testing.assert_array_equal(tab.rows.data["loss"], rec.per_sample)
    batch = state.events_of(ev.BatchSampled)[0]
    np.testing.assert_array_equal(tab.rows.data["row"], batch.indices)
    assert tab.bars.data["color"][4] != tab.bars.data["color"][3]
    text = html.unescape(tab.sample_pane.object)
    assert f"sample 4 of the batch (training row {batch.indices[4]})" in text
    assert f"= {explain.fmt(rec.per_sample[4], 6)}" in text
    assert "stable form" in text  # softmax + cce is fused
    batch_text = html.unescape(tab.batch_pane.object)
    assert f"1/{len(rec.per_sample)} × (" in batch_text
    assert batch_text.endswith(f"= {explain.fmt(rec.data_loss, 6)}</pre></div>")


def test_table_selection_picks_the_sample_and_sorting_orders_by_loss(
    tab: LossTab,
) -> None:
    state = tab.state
    state.go_to(3)
    rec = _loss(state)
    tab.sort_toggle.value = True
    assert np.all(np.diff(tab.bars.data["loss"]) <= 0)
    top = int(np.argmax(rec.per_sample))
    assert tab.rows.data["sample"][0] == top
    assert tab.rows.selected.indices == [int(np.argmax(tab.rows.data["sample"] == 0))]
    tab.rows.selected.indices = [0]  # a click on the first row
    assert state.sample == top
    assert tab.rows.selected.indices == [0]
    assert f"sample {top} of the batch" in tab.sample_pane.object


def test_whole_training_set_matches_the_recorded_epoch_loss(tab: LossTab) -> None:
    state = tab.state
    epochs = state.session.epochs()
    step = int(epochs.step[2])  # the last step of epoch 3
    state.go_to(step + 1)  # starts from the parameters epoch 3 ended with
    tab.split_select.value = "train"
    shown = np.asarray(tab.rows.data["loss"])
    assert len(shown) == state.session.dataset.n_train
    # The recorded training loss is a pass over the whole set only when the run
    # asked for one; by default it is the mean over the epoch's batches.
    session = state.session
    if session.config.train_metrics == "evaluation":
        assert shown.mean() == pytest.approx(epochs.train["loss"][2], rel=1e-12)
    else:
        batches = [
            e.per_sample
            for s in range(step + 1)
            for e in session.step_events(s)
            if isinstance(e, ev.LossComputed) and e.epoch == 2
        ]
        assert sum(len(b) for b in batches) == session.dataset.n_train
        assert np.concatenate(batches).mean() == pytest.approx(
            epochs.train["loss"][2], rel=1e-12
        )
    tab.split_select.value = "test"
    assert np.mean(tab.rows.data["loss"]) == pytest.approx(
        epochs.test["loss"][2], rel=1e-12
    )
    assert "test row 0" in tab.sample_pane.object


def test_cursor_line_moves_in_place_and_the_curve_is_drawn_once(tab: LossTab) -> None:
    state = tab.state
    figure, span, source = tab.curve_figure, tab.cursor_line, tab.curve
    data = source.data
    np.testing.assert_array_equal(data["loss"], state.session.series().loss)
    for step in (7, 80, 119):
        state.go_to(step)
        assert span.location == step
    assert tab.curve_pane.object is figure
    assert tab.curve_figure is figure and source.data is data
    assert len(tab.epoch_train.data["step"]) == 30


def test_moving_the_cursor_changes_the_values_shown(tab: LossTab) -> None:
    state = tab.state
    state.go_to(0)
    before = list(tab.bars.data["loss"])
    state.go_to(100)
    after = tab.bars.data["loss"]
    assert list(after) != before
    np.testing.assert_array_equal(after, _loss(state).per_sample)
    assert tab.bar_pane.object is tab.bar_figure


def test_decimate_keeps_spikes_and_bounds_points() -> None:
    x = np.arange(100_000)
    y = np.exp(-x / 20_000.0)
    y[77_777] = 50.0
    dx, dy = decimate(x, y, MAX_CURVE_POINTS)
    assert len(dx) <= MAX_CURVE_POINTS
    assert 77_777 in dx and dy.max() == 50.0
    assert np.all(np.diff(dx) > 0)
    short_x, short_y = decimate(x[:10], y[:10], MAX_CURVE_POINTS)
    np.testing.assert_array_equal(short_y, y[:10])


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("mse_dropout_l2", ["L = 1/1 × [(", "L2 penalty = 0.01/2 ×"]),
        ("bce", ["log(1 - ", "log(1 + e^"]),
    ],
)
def test_mse_bce_and_l2_expansions(
    tmp_path: Path, name: str, needles: list[str]
) -> None:
    state = AppState()
    assert state.open(record_run(name, tmp_path))
    tab = LossTab(state=state)
    state.tab = tab.index
    state.go_to(2)
    state.sample = 1
    rec = _loss(state)
    text = html.unescape(tab.sample_pane.object + tab.batch_pane.object)
    for needle in needles:
        assert needle in text
    assert f"= {explain.fmt(rec.per_sample[1], 6)}" in text
    assert f"= {explain.fmt(rec.loss, 6)}" in text
    if rec.l2_penalty:
        sum_sq = sum(float(np.sum(p["W"] ** 2)) for p in state.params())
        assert 0.5 * 0.01 * sum_sq == pytest.approx(rec.l2_penalty, rel=1e-12)
        assert f"× {explain.fmt(sum_sq)} = {explain.fmt(rec.l2_penalty, 6)}" in text


def test_without_session_the_tab_says_what_to_do() -> None:
    tab = LossTab(state=AppState())
    tab.refresh()
    assert "Open a session" in tab.status.object


def test_moving_between_operations_resends_only_the_highlight(tab: LossTab) -> None:
    state = tab.state
    state.go_to(12)
    bars, rows = tab.bars.data, tab.rows.data
    kinds = [e.kind for e in state.events]
    state.op = kinds.index("loss_computed")
    assert 'class="gn-now"' in tab.batch_pane.object
    assert tab.bars.data is bars and tab.rows.data is rows
    state.op = 0
    assert "gn-now" not in tab.batch_pane.object
    state.sample = 2
    assert tab.bars.data is not bars


def test_a_diverged_run_shows_inf_without_errors(tmp_path: Path) -> None:
    data = load_dataset("sine", n_samples=60, seed=1)
    spec = NetworkSpec(1, (LayerSpec(8, "relu"), LayerSpec(1, "linear")))
    cfg = TrainingConfig(optimizer="sgd", lr=1e9, epochs=5, batch_size=10, seed=0)
    path = tmp_path / "diverged.session"
    assert record(spec, cfg, data, path) == "diverged"
    state = AppState()
    assert state.open(path)
    tabs = [LossTab(state=state), ForwardTab(state=state)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for tab in tabs:
            state.tab = tab.index
            state.go_to(state.n_steps - 1)
            for op in range(len(state.events)):
                state.op = op
    assert "mean loss inf" in tabs[0].status.object
    assert "= inf</pre>" in tabs[0].sample_pane.object


def test_the_legend_names_how_the_training_points_were_measured(tab: LossTab) -> None:
    labels = [item.label["value"] for item in tab.curve_figure.legend.items]
    assert tab.state.session.config.train_metrics == "batches"
    assert "training batches, mean over each epoch" in labels
    assert "test set, after each epoch" in labels
