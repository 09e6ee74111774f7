"""Tab 7 on real recorded sessions: activations, gradients, units, weights."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from analysis_runs import (
    record_deep_sigmoid,
    record_diverging,
    record_long,
    record_moons,
    record_unhealthy,
)

from engine.network import forward
from ui import metrics
from ui.state import AppState
from ui.tabs.analysis import (
    HIST_BINS,
    MAX_SERIES_POINTS,
    PERCENTILES,
    AnalysisTab,
    unit_ticks,
)
from ui.tabs.results import ResultsTab


def _tab(path: Path) -> AnalysisTab:
    state = AppState()
    assert state.open(path), state.message
    tab = AnalysisTab(state=state)
    state.tab = tab.index
    return tab


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("analysis")
    return {
        "moons": record_moons(folder),
        "unhealthy": record_unhealthy(folder),
        "deep": record_deep_sigmoid(folder),
    }


def _forward(tab: AnalysisTab, step: int):
    session = tab.state.session
    params = session.state_before(step).params
    return params, forward(params, session.dataset.X_train, session.spec.activations())


def test_histograms_follow_the_cursor(runs) -> None:
    tab = _tab(runs["moons"])
    seen = []
    for step in (0, 9):
        tab.state.go_to(step)
        _, trace = _forward(tab, step)
        for layer in range(2):
            counts, edges = np.histogram(trace.a_act[layer], bins=HIST_BINS)
            data = tab._views["hists"][layer].data
            assert list(data["top"]) == list(counts)
            assert np.allclose(data["left"], edges[:-1])
        seen.append(list(tab._views["hists"][0].data["right"]))
    assert seen[0] != seen[1]


def test_dead_and_saturated_units_are_found(runs) -> None:
    tab = _tab(runs["unhealthy"])
    for step in range(tab.state.n_steps):
        tab.state.go_to(step)
        _, trace = _forward(tab, step)
        health = tab.unit_health()
        # Unit 2 of layer 1 is never active on any training sample.
        assert (trace.a_act[0][:, 1] == 0).all()
        assert health[0]["kind"] == "dead"
        assert list(health[0]["units"]) == [1]
        assert health[0]["share"] == pytest.approx(1 / 3)
        near = np.abs(trace.a_act[1]) > 1 - metrics.SATURATED_MARGIN
        expected = near.mean(axis=0) >= metrics.SATURATED_SHARE
        assert health[1]["kind"] == "saturated"
        assert list(health[1]["units"]) == list(np.flatnonzero(expected))
        assert expected.sum() >= 2
    assert "dead: 33% of the units (unit 2)" in tab._units.object
    assert "saturated: " in tab._units.object


def test_gradient_verdicts_are_shown_per_layer(runs) -> None:
    deep = _tab(runs["deep"])
    deep.state.go_to(deep.state.n_steps - 1)
    norms = deep.state.session.series().grad_norms
    verdicts = metrics.gradient_health(norms, deep.state.n_steps - 1)
    assert [v.verdict for v in deep.verdicts()] == [v.verdict for v in verdicts]
    assert verdicts[0].verdict == "vanishing" and verdicts[-1].verdict == "healthy"
    html = deep._verdicts.object
    assert (
        "<td>layer 1 (sigmoid)</td><td style='color:#1f77b4'><b>vanishing</b>" in html
    )
    assert "fades on its way back" in html
    moons = _tab(runs["moons"])
    assert moons._verdicts.object.count("<b>healthy</b>") == 2


def test_whole_run_series_and_the_cursor_mark(runs) -> None:
    tab = _tab(runs["moons"])
    series = tab.state.session.series()
    grad = tab._views["grad_sources"]
    assert list(grad[1].data["y"]) == list(series.grad_norms[:, 1])
    ratio = tab._views["ratio_sources"]
    assert list(ratio[0].data["y"]) == list(series.update_ratios[:, 0])
    tab.state.go_to(7)
    assert tab._views["grad_span"].location == 7
    assert tab._views["ratio_span"].location == 7
    assert list(tab._views["grad_dots"].data["y"]) == list(series.grad_norms[7])
    assert all(span.location == 7 for _, span in tab._views["runs"])


def test_weights_show_the_parameters_the_step_used(runs) -> None:
    tab = _tab(runs["moons"])
    for step in (2, 11):
        tab.state.go_to(step)
        params, _ = _forward(tab, step)
        for layer, (source, mapper, _) in enumerate(tab._views["weights"]):
            W = params[layer]["W"]
            assert np.array_equal(source.data["image"][0], W)
            assert mapper.high == pytest.approx(np.abs(W).max())


def test_log_axes_are_ticked_over_the_whole_data_range(runs) -> None:
    tab = _tab(runs["moons"])
    series = tab.state.session.series()
    for key, values in (
        ("grad", series.grad_norms),
        ("ratio", series.update_ratios),
    ):
        ticks = tab._views[f"{key}_fig"].yaxis[0].ticker.ticks
        finite = values[np.isfinite(values) & (values > 0)]
        # A labelled tick at or below the smallest value and at or above the largest.
        assert min(ticks) <= finite.min() < finite.max() <= max(ticks)
        # Log ticks: 1, 2 and 5 of each decade (a short range), never linear steps.
        mantissas = {round(t / 10 ** np.floor(np.log10(t)), 6) for t in ticks}
        assert mantissas <= {1.0, 2.0, 5.0}


def test_weight_maps_tick_whole_units_from_1_at_cell_centres(runs) -> None:
    tab = _tab(runs["moons"])
    tab.state.go_to(3)
    params = tab.state.params()
    for (_, _, fig), p in zip(tab._views["weights"], params, strict=True):
        n_in, n_out = p["W"].shape
        assert fig.xaxis[0].ticker.ticks == unit_ticks(n_out)
        assert fig.yaxis[0].ticker.ticks[0] == 1
        assert fig.yaxis[0].ticker.ticks[-1] == n_in
        image = fig.renderers[0].glyph
        # Cell k spans k - 0.5 .. k + 0.5, so tick k sits on its centre.
        assert (image.x, image.y) == (0.5, 0.5)
    assert unit_ticks(16) == list(range(1, 17))
    assert unit_ticks(64)[:3] == [1, 5, 10] and unit_ticks(64)[-1] == 64


def test_activations_over_the_run_are_sampled_and_exact(runs) -> None:
    tab = _tab(runs["moons"])
    run = tab.run_activations()
    n = tab.state.n_steps
    assert run["steps"] == list(range(n + 1))  # short run: every step
    _, trace = _forward(tab, 5)
    expected = np.percentile(trace.a_act[0], PERCENTILES)
    assert np.allclose(run["layers"][0][5], expected)
    session = tab.state.session
    after = forward(
        session.params_after(n - 1), session.dataset.X_train, session.spec.activations()
    )
    assert np.allclose(run["layers"][1][-1], np.percentile(after.a_act[1], PERCENTILES))
    source = tab._views["runs"][0][0].data
    assert list(source["p50"]) == list(run["layers"][0][:, 2])
    assert f"at {n + 1} sampled steps" in tab._run_note.object


def test_long_run_is_decimated_and_the_cursor_stays_exact(tmp_path: Path) -> None:
    tab = _tab(record_long(tmp_path, epochs=500))  # 5,000 steps
    assert tab.state.n_steps == 5000
    series = tab.state.session.series()
    for key, values in (("grad", series.grad_norms), ("ratio", series.update_ratios)):
        for i, source in enumerate(tab._views[f"{key}_sources"]):
            data = source.data
            assert len(data["x"]) == MAX_SERIES_POINTS
            assert (data["lo"] <= data["y"]).all() and (data["y"] <= data["hi"]).all()
            finite = values[:, i][values[:, i] > 0]
            assert data["hi"].max() == finite.max()
            assert data["lo"].min() == finite.min()
    assert "5000 steps drawn as 1000 buckets" in tab._series_note.object
    run = tab.run_activations()
    assert len(run["steps"]) <= 40 and run["steps"][-1] == 5000
    assert all(s % tab.state.session.keyframe_interval == 0 for s in run["steps"][:-1])
    times = []
    for step in (4321, 4322, 17, 2999):
        start = time.perf_counter()
        tab.state.go_to(step)
        times.append(time.perf_counter() - start)
        assert tab._views["grad_span"].location == step
        assert list(tab._views["grad_dots"].data["y"]) == list(series.grad_norms[step])
    assert sorted(times)[len(times) // 2] < 0.5


def test_a_diverged_run_is_called_exploding_without_warnings(tmp_path: Path) -> None:
    state = AppState()
    assert state.open(record_diverging(tmp_path))
    analysis = AnalysisTab(state=state)
    results = ResultsTab(state=state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for index in (results.index, analysis.index):
            state.tab = index
            for step in range(state.n_steps):
                state.go_to(step)
    assert [v.verdict for v in analysis.verdicts()] == ["exploding", "exploding"]
    assert "<b>exploding</b>" in analysis._verdicts.object
    assert state.message == ""
