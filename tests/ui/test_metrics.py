"""Tests of ui.metrics: hand-computed cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ui import metrics as m


def test_confusion_matrix_counts_pairs_by_hand() -> None:
    actual = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0, 2])
    expected = [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert m.confusion_matrix(actual, predicted, 3).tolist() == expected


def test_confusion_matrix_rejects_out_of_range_classes() -> None:
    with pytest.raises(ValueError, match="outside 0..1"):
        m.confusion_matrix(np.array([0, 2]), np.array([0, 1]), 2)


def test_class_metrics_by_hand() -> None:
    # Class 0: tp 1, fp 1, fn 1; class 1: tp 1, fp 1, fn 0; class 2: tp 2, fp 0, fn 1.
    matrix = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    got = m.class_metrics(matrix)
    assert got.precision == pytest.approx([0.5, 0.5, 1.0])
    assert got.recall == pytest.approx([0.5, 1.0, 2 / 3])
    assert got.f1 == pytest.approx([0.5, 2 / 3, 0.8])
    assert got.support.tolist() == [2, 1, 3]
    assert got.accuracy == pytest.approx(4 / 6)
    assert got.macro_precision == pytest.approx(2 / 3)
    assert got.macro_recall == pytest.approx((0.5 + 1 + 2 / 3) / 3)
    assert got.macro_f1 == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)


def test_class_metrics_zero_division_gives_zero() -> None:
    # Class 1 is never predicted and class 2 never occurs.
    matrix = np.array([[2, 0, 1], [1, 0, 0], [0, 0, 0]])
    got = m.class_metrics(matrix)
    assert got.precision.tolist() == [2 / 3, 0.0, 0.0]
    assert got.recall.tolist() == [2 / 3, 0.0, 0.0]
    assert np.isfinite(got.f1).all()
    assert math.isnan(m.class_metrics(np.zeros((2, 2), dtype=int)).accuracy)


def test_accuracy_uses_the_trainers_rules() -> None:
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    y_hat = np.array([[0.5], [0.5], [0.49], [0.1]])
    assert m.classification_accuracy(y_hat, y, "binary") == 0.5
    y3 = np.eye(3)[[0, 1, 2]]
    assert m.classification_accuracy(np.eye(3)[[0, 2, 2]], y3, "multiclass") == 2 / 3
    with pytest.raises(ValueError, match="task must be"):
        m.predicted_classes(y_hat, "regression")


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(
                st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1
            ),
        )
    )
)
def test_metrics_properties(case: tuple[int, list[tuple[int, int]]]) -> None:
    k, pairs = case
    actual = np.array([p[0] for p in pairs])
    predicted = np.array([p[1] for p in pairs])
    matrix = m.confusion_matrix(actual, predicted, k)
    assert matrix.sum() == len(pairs)
    assert (matrix.sum(axis=1) == np.bincount(actual, minlength=k)).all()
    got = m.class_metrics(matrix)
    for value in (got.macro_f1, got.macro_precision, got.macro_recall, got.accuracy):
        assert 0.0 <= value <= 1.0
    assert got.accuracy == pytest.approx(float((actual == predicted).mean()))
    # F1 lies between the smaller of precision and recall and the larger.
    assert (got.f1 <= np.maximum(got.precision, got.recall) + 1e-12).all()
    assert (got.f1 >= np.minimum(got.precision, got.recall) - 1e-12).all()


def test_regression_metrics_by_hand() -> None:
    y = np.array([[1.0], [2.0], [3.0]])
    y_hat = np.array([[1.0], [2.0], [4.0]])
    got = m.regression_metrics(y_hat, y)
    assert got["mse"] == pytest.approx(1 / 3)
    assert got["mae"] == pytest.approx(1 / 3)
    assert got["r2"] == pytest.approx(1 - 1 / 2)
    assert m.regression_metrics(y, y)["r2"] == 1.0
    flat = np.ones((3, 1))
    assert m.regression_metrics(flat + 1, flat)["r2"] == 0.0
    assert math.isnan(m.regression_metrics(np.zeros((0, 1)), np.zeros((0, 1)))["mse"])


def test_dead_fraction_finds_units_never_active() -> None:
    a = np.array([[0.0, 0.3, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    share, dead = m.dead_fraction(a)
    assert share == pytest.approx(1 / 3)
    assert dead.tolist() == [True, False, False]


def test_saturated_fraction_for_sigmoid_and_tanh() -> None:
    sig = np.array([[0.999, 0.5, 0.001]] * 9 + [[0.999, 0.5, 0.5]])
    share, sat = m.saturated_fraction(sig, "sigmoid")
    assert sat.tolist() == [True, False, True]  # 9 of 10 samples is 90 %
    assert share == pytest.approx(2 / 3)
    tanh = np.array([[-0.995, 0.97], [0.999, 0.2]])
    assert m.saturated_fraction(tanh, "tanh")[1].tolist() == [True, False]
    with pytest.raises(ValueError, match="sigmoid"):
        m.saturated_fraction(tanh, "relu")


def _names(verdicts: list[m.GradientVerdict]) -> list[str]:
    return [v.verdict for v in verdicts]


def test_gradient_health_on_constructed_series() -> None:
    steps = 100
    healthy = np.full(steps, 0.5)
    vanishing = np.geomspace(1.0, 1e-6, steps)  # falls a million times
    exploding = np.geomspace(1.0, 1e4, steps)
    last = np.full(steps, 1.0)
    norms = np.column_stack([healthy, vanishing, exploding, last])
    assert _names(m.gradient_health(norms, 99)) == [
        "healthy",
        "vanishing",
        "exploding",
        "healthy",
    ]
    # At the start nothing has happened yet.
    assert _names(m.gradient_health(norms, 5)) == ["healthy"] * 4


def test_gradient_health_absolute_and_layer_rules() -> None:
    norms = np.array([[1e-9, 2e-5, np.inf, 0.1]] * 20)
    verdicts = m.gradient_health(norms, 19)
    assert _names(verdicts) == ["vanishing", "vanishing", "exploding", "healthy"]
    assert "output layer" in verdicts[1].reason
    assert "not a finite" in verdicts[2].reason
    assert _names(m.gradient_health(np.zeros((0, 2)), 0)) == ["unknown"] * 2


def test_decimate_keeps_extremes_and_bounds_the_length() -> None:
    x = np.arange(100_000)
    y = np.sin(x / 1000.0)
    y[54_321] = 50.0
    xs, ys = m.decimate(x, y, 2000)
    assert len(xs) <= 2000 and len(ys) == len(xs)
    assert ys.max() == 50.0 and ys.min() == pytest.approx(y.min())
    assert xs[0] == 0 and xs[-1] == 99_999
    assert (np.diff(xs) >= 0).all()
    short_x, short_y = m.decimate(x[:10], y[:10], 2000)
    assert short_y.tolist() == y[:10].tolist()


def test_decimate_works_column_by_column() -> None:
    y = np.column_stack([np.arange(10.0), -np.arange(10.0)])
    xs, ys = m.decimate(np.arange(10), y, 4)
    assert ys.shape == (4, 2)
    assert ys[:, 0].tolist() == [0.0, 4.0, 5.0, 9.0]
    assert ys[:, 1].tolist() == [-4.0, 0.0, -9.0, -5.0]
    with pytest.raises(ValueError, match="at least 2"):
        m.decimate(np.arange(3), np.arange(3.0), 1)


def test_bucket_summary_gives_min_median_max_per_bucket() -> None:
    y = np.column_stack([np.arange(12.0), np.r_[np.full(6, np.nan), np.arange(6.0)]])
    x, lo, mid, hi = m.bucket_summary(np.arange(12), y, 3)
    assert x.tolist() == [0.0, 4.0, 8.0]
    assert lo[:, 0].tolist() == [0.0, 4.0, 8.0]
    assert mid[:, 0].tolist() == [1.5, 5.5, 9.5]
    assert hi[:, 0].tolist() == [3.0, 7.0, 11.0]
    # NaN is ignored; an all-NaN bucket stays NaN.
    assert np.isnan(mid[0, 1]) and mid[1, 1] == 0.5 and hi[2, 1] == 5.0
    same = m.bucket_summary(np.arange(3), np.ones((3, 2)), 10)
    assert all(part.shape == (3, 2) for part in same[1:])
    with pytest.raises(ValueError, match="at least 1"):
        m.bucket_summary(np.arange(3), np.ones((3, 1)), 0)
