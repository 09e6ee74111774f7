"""The engine's faster code paths compute exactly what the plain NumPy would."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Dataset, LayerSpec, NetworkSpec, Trainer, TrainingConfig
from engine import events as ev
from engine.losses import _clip, _row_mean
from engine.network import _BLOCK_WORK, _weighted_sum, forward
from engine.trainer import _all_finite, _mean


def _awkward(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Return normal values with some inf, -inf, NaN, zeros and huge entries."""
    x = rng.normal(size=shape) * 10.0 ** rng.integers(-5, 6, size=shape)
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, size=min(6, flat.size), replace=False)
    flat[picks] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e300][: len(picks)]
    return x


def test_mean_row_mean_and_clip_match_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 2, 7, 8, 9, 31, 64, 1000):
        x = rng.normal(size=n) * 1e3
        assert _mean(x) == float(x.mean())
        m = rng.normal(size=(n, 10))
        np.testing.assert_array_equal(_row_mean(m), m.mean(axis=1))
        one = rng.normal(size=(n, 1))
        np.testing.assert_array_equal(_row_mean(one), one.mean(axis=1))
    with np.errstate(all="ignore"):
        odd = _awkward(rng, (50, 3))
        np.testing.assert_array_equal(_row_mean(odd), odd.mean(axis=1))
        np.testing.assert_array_equal(
            _clip(odd, 1e-12, 1.0 - 1e-12), np.clip(odd, 1e-12, 1.0 - 1e-12)
        )


def test_all_finite_is_false_exactly_when_an_entry_is_not_finite() -> None:
    rng = np.random.default_rng(1)
    fine = [rng.normal(size=(3, 4)), rng.normal(size=4)]
    assert _all_finite(fine)
    # The trainer calls it with overflow warnings off, as here.
    with np.errstate(over="ignore", invalid="ignore"):
        # Squares that overflow are still finite entries.
        assert _all_finite([np.full((2, 2), 1e200), np.full(3, -1e180)])
        for bad in (np.inf, -np.inf, np.nan):
            arrays = [a.copy() for a in fine]
            arrays[1][2] = bad
            assert not _all_finite(arrays)
            huge = [np.full((2, 2), 1e200), np.array([1.0, bad])]
            assert not _all_finite(huge)


def test_a_large_set_is_multiplied_in_row_blocks_with_the_same_bits() -> None:
    rng = np.random.default_rng(3)
    n_in, n_out = 64, 32
    rows = (_BLOCK_WORK - 1) // (n_in * n_out)
    X = rng.normal(size=(5 * rows + 17, n_in))
    W = rng.normal(size=(n_in, n_out))
    b = rng.normal(size=n_out)
    z = _weighted_sum(X, W, b)
    # Each block is what one product of that block alone gives ...
    blocks = [X[i : i + rows] @ W + b for i in range(0, X.shape[0], rows)]
    np.testing.assert_array_equal(z, np.concatenate(blocks))
    # ... and a single product agrees to rounding.
    np.testing.assert_allclose(z, X @ W + b, rtol=1e-12, atol=1e-12)
    # A batch within one block is the plain formula, bit for bit.
    small = X[:rows]
    np.testing.assert_array_equal(_weighted_sum(small, W, b), small @ W + b)


def test_a_whole_set_forward_gives_each_row_what_its_block_gives() -> None:
    # Evaluation, training and replay all call forward; a row's output depends
    # only on its block, so the same rows always give the same bits.
    rng = np.random.default_rng(5)
    spec = NetworkSpec(64, (LayerSpec(32, "relu"), LayerSpec(10, "softmax")))
    params = spec.init_params(rng)
    X = rng.normal(size=(1500, 64))
    full = forward(params, X, spec.activations()).y_hat
    again = forward(params, X.copy(), spec.activations()).y_hat
    np.testing.assert_array_equal(full, again)


def _linear_run(lr: float, scale: float) -> tuple[NetworkSpec, TrainingConfig, Dataset]:
    g = np.random.default_rng(0)
    X = g.normal(size=(16, 2)) * scale
    y = X @ [[3.0], [-2.0]]
    data = Dataset("big", "regression", X, y, X[:4], y[:4], ("a", "b"))
    spec = NetworkSpec(2, (LayerSpec(3, "linear"), LayerSpec(1, "linear")))
    config = TrainingConfig(
        loss="mse", optimizer="sgd", lr=lr, epochs=60, batch_size=4, seed=1
    )
    return spec, config, data


@pytest.mark.parametrize(
    ("lr", "scale"), [(0.01, 1.0), (0.05, 10.0), (1.0, 100.0), (10.0, 1e3)]
)
def test_a_silent_run_ends_where_a_listened_run_ends_with_the_same_bits(
    lr: float, scale: float
) -> None:
    # Without a sink the trainer skips norms and update ratios but must find
    # the same divergence at the same step and leave the same parameters.
    spec, config, data = _linear_run(lr, scale)
    log: list[ev.Event] = []
    heard = Trainer(spec, config, data, sink=log.append)
    silent = Trainer(spec, config, data)
    assert heard.run() == silent.run()
    assert (heard.step_index, heard.next_seq) == (silent.step_index, silent.next_seq)
    assert heard.diverged == silent.diverged
    for a, b in zip(heard.params, silent.params, strict=True):
        for k in ("W", "b"):
            np.testing.assert_array_equal(a[k], b[k])
    assert log[-1].seq == silent.next_seq - 1
