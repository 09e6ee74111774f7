"""Automatic bookmarks on real recorded runs: each kind found where it happens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import events as ev
from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec, forward
from sessions import Session, bookmarks, record
from sessions.bookmarks import (
    SATURATED_SHARE,
    VANISHING_RATIO,
    _rolling_max,
    find_bookmarks,
)
from sessions.datasets import load_dataset


def _record(tmp_path: Path, name: str, dataset, spec, config) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / f"{name}.session"
    record(spec, config, dataset, path)
    return path


def _kinds(path: Path) -> dict[str, list]:  # type: ignore[type-arg]
    with Session(path) as session:
        marks = find_bookmarks(session)
    out: dict[str, list] = {}  # type: ignore[type-arg]
    for m in marks:
        out.setdefault(m.kind, []).append(m)
    assert [m.step for m in marks] == sorted(m.step for m in marks)
    return out


def test_a_diverging_run_marks_its_first_non_finite_value_and_dead_units(
    tmp_path: Path,
) -> None:
    path = _record(
        tmp_path,
        "hot",
        load_dataset("iris", seed=1),
        NetworkSpec(4, (LayerSpec(8, "relu"), LayerSpec(3, "softmax"))),
        TrainingConfig(loss="cce", optimizer="sgd", lr=200.0, epochs=30, batch_size=16),
    )
    kinds = _kinds(path)
    with Session(path) as session:
        assert session.status == "diverged"
        (bad,) = kinds["nonfinite"]
        assert bad.step == session.end.step  # type: ignore[union-attr]
        diverged = [
            e
            for e in session.step_events(bad.step)
            if isinstance(e, ev.TrainingDiverged)
        ]
        assert bad.detail == diverged[0].message
        # The dead unit: z <= 0 on every training sample after that step, not before.
        (dead,) = kinds["dead_unit"]
        X = session.dataset.X_train
        acts = session.spec.activations()
        z_at = forward(session.params_after(dead.step), X, acts).z[0]
        z_before = forward(session.params_after(dead.step - 1), X, acts).z[0]
        dead_now = (z_at <= 0).all(axis=0)
        assert dead_now.any()
        assert not (z_before <= 0).all(axis=0).any()
        first = int(np.flatnonzero(dead_now)[0]) + 1
        assert f"unit {first}" in dead.detail
    assert kinds["exploding_gradients"]


def test_a_deep_sigmoid_network_marks_vanishing_gradients(tmp_path: Path) -> None:
    path = _record(
        tmp_path,
        "deep",
        load_dataset("moons", n_samples=200, seed=1),
        NetworkSpec(
            2,
            tuple(LayerSpec(6, "sigmoid") for _ in range(7))
            + (LayerSpec(1, "sigmoid"),),
        ),
        TrainingConfig(loss="bce", optimizer="sgd", lr=0.5, epochs=3, batch_size=16),
    )
    kinds = _kinds(path)
    mark = kinds["vanishing_gradients"][0]
    assert mark.layer == 0
    with Session(path) as session:
        series = session.series()
        row = series.grad_norms[list(series.step).index(mark.step)]
        assert row[0] < VANISHING_RATIO * row[-1]
        earlier = series.grad_norms[series.step < mark.step]
        assert not (earlier[:, 0] < VANISHING_RATIO * earlier[:, -1]).any()


def test_big_initial_weights_mark_saturated_tanh_units(tmp_path: Path) -> None:
    data = load_dataset("moons", n_samples=200, seed=2)
    spec = NetworkSpec(
        2,
        (LayerSpec(3, "tanh"), LayerSpec(1, "sigmoid")),
        initial_params=[
            {
                "W": np.array([[40.0, 0.01, -40.0], [40.0, 0.02, 40.0]]),
                "b": np.zeros(3),
            },
            {"W": np.array([[0.1], [0.2], [0.3]]), "b": np.zeros(1)},
        ],
    )
    config = TrainingConfig(
        loss="bce", optimizer="sgd", lr=0.01, epochs=2, batch_size=32
    )
    kinds = _kinds(_record(tmp_path, "sat", data, spec, config))
    (mark,) = kinds["saturated_units"]
    assert mark.step == 0 and mark.layer == 0
    with Session(tmp_path / "sat.session") as session:
        z = forward(
            session.params_after(0), session.dataset.X_train, spec.activations()
        ).z[0]
    share = (np.abs(z) > 3.0).mean(axis=0)
    assert share[0] >= SATURATED_SHARE and share[1] < SATURATED_SHARE
    assert "unit 1" in mark.detail and "unit 2" not in mark.detail


def test_a_run_from_tiny_weights_marks_its_plateau_and_best_test_result(
    tmp_path: Path,
) -> None:
    data = load_dataset("xor", n_samples=200, seed=1)
    spec = NetworkSpec(
        2,
        (LayerSpec(4, "sigmoid"), LayerSpec(1, "sigmoid")),
        initial_params=[
            {
                "W": np.full((2, 4), 1e-2) * [[1, -1, 2, -2], [2, 1, -1, -2]],
                "b": np.zeros(4),
            },
            {"W": np.full((4, 1), 1e-2) * [[1], [-2], [1], [3]], "b": np.zeros(1)},
        ],
    )
    config = TrainingConfig(
        loss="mse", optimizer="sgd", lr=1.0, epochs=300, batch_size=32
    )
    path = _record(tmp_path, "flat", data, spec, config)
    kinds = _kinds(path)
    (flat,) = kinds["plateau"]
    with Session(path) as session:
        loss = session.series().loss
        epochs = session.epochs()
    k = 75 // 5  # 1500 steps: windows of 75 steps, a moving mean over 15
    smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
    window = smooth[flat.step : flat.step + 75]
    assert window.max() - window.min() <= 0.01 * np.abs(window).max()
    assert smooth[flat.step + 75 :].min() < 0.9 * np.abs(window).max()
    # No earlier window of the run qualifies.
    for i in range(flat.step):
        w = smooth[i : i + 75]
        assert w.max() - w.min() > 0.01 * np.abs(w).max() or (
            smooth[i + 75 :].min() >= 0.9 * np.abs(w).max()
        )
    (best,) = kinds["best_test"]
    acc = epochs.test["accuracy"]
    assert best.step == int(epochs.step[int(np.argmax(acc))])


def test_a_steady_run_has_no_alarm_bookmarks(tmp_path: Path) -> None:
    path = _record(
        tmp_path,
        "calm",
        load_dataset("iris", seed=0),
        NetworkSpec(4, (LayerSpec(8, "relu"), LayerSpec(3, "softmax"))),
        TrainingConfig(loss="cce", optimizer="adam", lr=0.01, epochs=20, batch_size=32),
    )
    kinds = _kinds(path)
    assert set(kinds) <= {"best_test", "plateau"}


@pytest.mark.parametrize("steps", [1, 3])
def test_very_short_runs_give_no_errors(tmp_path: Path, steps: int) -> None:
    data = load_dataset("xor", n_samples=8, seed=0)
    spec = NetworkSpec(2, (LayerSpec(2, "relu"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(loss="bce", optimizer="gd", lr=0.5, epochs=steps)
    kinds = _kinds(_record(tmp_path, f"short{steps}", data, spec, config))
    assert "loss_spike" not in kinds and "plateau" not in kinds


def test_the_rolling_maximum_is_the_maximum_of_every_window() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 5, 17, 64):
        x = rng.normal(size=n)
        for width in range(1, n + 1):
            want = np.lib.stride_tricks.sliding_window_view(x, width).max(axis=1)
            np.testing.assert_array_equal(_rolling_max(x, width), want)


def test_bookmarks_are_found_once_per_file_version(tmp_path: Path) -> None:
    data = load_dataset("xor", n_samples=8, seed=0)
    spec = NetworkSpec(2, (LayerSpec(2, "relu"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(loss="bce", optimizer="gd", lr=0.5, epochs=30)
    path = _record(tmp_path, "cached", data, spec, config)
    with Session(path) as session:
        first = find_bookmarks(session)
        calls = []
        real = bookmarks._find
        bookmarks._find = lambda s: calls.append(s) or real(s)  # type: ignore[assignment]
        try:
            assert find_bookmarks(session) == first
            assert not calls  # remembered
            path.touch()  # a changed file is looked at again
            assert find_bookmarks(session) == first
            assert len(calls) == 1
        finally:
            bookmarks._find = real  # type: ignore[assignment]
