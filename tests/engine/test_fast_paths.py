"""The engine's faster code paths compute exactly what the plain NumPy would."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Dataset, LayerSpec, NetworkSpec, Trainer, TrainingConfig
from engine import events as ev
from engine._rows import row_max, row_sum
from engine.activations import Softmax
from engine.losses import CategoricalCrossEntropy, _clip, _row_mean
from engine.network import _BLOCK_WORK, _weighted_sum, forward
from engine.optimizers import OPTIMIZERS, get_optimizer
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


def _assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Assert equal shapes and equal bits (NaN payloads and signed zeros too)."""
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))


def test_row_sum_and_row_max_are_numpys_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    with np.errstate(all="ignore"):
        for k in range(1, 13):
            for n in (1, 3, 64, 150, 2000):
                x = _awkward(rng, (n, k))
                _assert_same_bits(row_sum(x), x.sum(axis=1))
                _assert_same_bits(row_max(x), x.max(axis=1, keepdims=True))
                fine = rng.normal(size=(n, k))
                _assert_same_bits(row_max(fine), fine.max(axis=1, keepdims=True))
        # Every pair and triple of special values: signed zeros, NaNs of both
        # signs and another payload, in many rows.
        other = np.array([0x7FF8000000000123], dtype=np.uint64).view(np.float64)[0]
        special = [-0.0, 0.0, -1.0, 2.5, np.inf, -np.inf, np.nan, -np.nan, other, 1e308]
        for k in (2, 3):
            grid = np.array(np.meshgrid(*[special] * k)).reshape(k, -1).T.copy()
            _assert_same_bits(row_sum(grid), grid.sum(axis=1))
            _assert_same_bits(row_max(grid), grid.max(axis=1, keepdims=True))
            finite = grid[np.isfinite(grid).all(axis=1)]
            _assert_same_bits(row_max(finite), finite.max(axis=1, keepdims=True))


def test_the_fused_loss_shares_the_softmax_parts_with_the_same_bits() -> None:
    # The plain formulas as they were before the softmax and the loss shared
    # their row maxima and sums of exp(z - top).
    def plain_softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def plain_loss(z: np.ndarray, y: np.ndarray) -> np.ndarray:
        top = z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
        return lse * y.sum(axis=1) - (y * z).sum(axis=1)

    rng = np.random.default_rng(12)
    loss = CategoricalCrossEntropy()
    with np.errstate(all="ignore"):
        for k in (2, 3, 7, 8, 10, 13):
            for n in (1, 5, 64, 150):
                z = rng.normal(size=(n, k)) * 10.0 ** rng.integers(-3, 4)
                if n > 1:
                    z[0] = _awkward(rng, (1, k))[0]
                y = np.eye(k)[rng.integers(0, k, size=n)]
                a, parts = Softmax().forward_parts(z)
                _assert_same_bits(a, plain_softmax(z))
                _assert_same_bits(Softmax().forward(z), a)
                want = plain_loss(z, y)
                _assert_same_bits(loss.forward_from_logits(z, y), want)
                for one in (False, True):
                    got = loss.forward_from_logits(z, y, (*parts, one))
                    _assert_same_bits(got, want)
                # Targets whose rows do not sum to 1 are multiplied by their sums.
                soft = rng.random((n, k))
                _assert_same_bits(
                    loss.forward_from_logits(z, soft, (*parts, False)),
                    plain_loss(z, soft),
                )


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_update_rule_turns_a_non_finite_gradient_into_a_non_finite_parameter(
    name: str,
) -> None:
    # The trainer checks the gradients only when a new parameter is not finite.
    rng = np.random.default_rng(13)
    defaults = TrainingConfig(optimizer=name).optimizer_settings()
    with np.errstate(all="ignore"):
        for lr in (1e-320, 1e-3, 10.0, 1e300):
            opt = get_optimizer(name, lr, **defaults)
            for t in (1, 2, 50):
                param = rng.normal(size=(4, 3))
                state = {k: rng.random(size=(4, 3)) for k in opt.state_names}
                for bad in (np.inf, -np.inf, np.nan):
                    grad = rng.normal(size=(4, 3)) * 1e3
                    grad[1, 2] = bad
                    new, _ = opt.update(param, grad, state, t)
                    assert not np.isfinite(new[1, 2]), (lr, t, bad)


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


class _Wants:
    """A sink that keeps only the event kinds it names (as the recorder does)."""

    def __init__(self, *kinds: str) -> None:
        self.wants = frozenset(kinds)
        self.log: list[ev.Event] = []

    def __call__(self, event: ev.Event) -> None:
        self.log.append(event)


def test_a_gradient_that_overflows_is_named_alike_without_dy_hat() -> None:
    # A fused output layer needs no dy_hat, so a run that does not record
    # gradients skips it; when a gradient overflows while the loss is finite,
    # the divergence must still name what a full run names.  Here the output
    # weights are +-1.7e308 and the first sample saturates the softmax the
    # wrong way (dz = [1, -1]), so da_prev = dz @ W.T reaches about 3.4e308.
    X = np.array([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    y = np.eye(2)[[1, 1, 0, 0]]
    data = Dataset("huge", "multiclass", X, y, X[:0], y[:0], ("a", "b"))
    big = 1.7e308
    spec = NetworkSpec(
        2,
        (LayerSpec(3, "identity"), LayerSpec(2, "softmax")),
        initial_params=[
            {"W": np.full((2, 3), 1e-300), "b": np.zeros(3)},
            {"W": np.array([[big, -big]] * 3), "b": np.zeros(2)},
        ],
    )
    config = TrainingConfig(
        loss="cce", optimizer="sgd", lr=0.1, batch_size=1, epochs=2, shuffle=False
    )
    full: list[ev.Event] = []
    assert Trainer(spec, config, data, sink=full.append).run() == "diverged"
    few = _Wants("step_completed", "training_diverged", "session_ended")
    assert Trainer(spec, config, data, sink=few).run() == "diverged"
    silent = Trainer(spec, config, data)
    assert silent.run() == "diverged"
    want = [e for e in full if isinstance(e, ev.TrainingDiverged)]
    got = [e for e in few.log if isinstance(e, ev.TrainingDiverged)]
    assert got == want and len(want) == 1
    assert want[0].quantity == "da_prev"
    assert [e.seq for e in few.log] == [e.seq for e in full if e.kind in few.wants]
    assert silent.next_seq == full[-1].seq + 1


def test_a_gradient_whose_norm_overflows_is_not_a_divergence() -> None:
    # Entries of +-1.7e308 are finite although their norm is not; the run
    # must go on (or end) alike in every mode, not stop on an assertion.
    X = np.array([[1.0, -1.0], [-1.0, 1.0]])
    y = np.eye(2)[[0, 1]]
    data = Dataset("huge", "multiclass", X, y, X[:0], y[:0], ("a", "b"))
    big = 1.7e308
    spec = NetworkSpec(
        2,
        (LayerSpec(3, "identity"), LayerSpec(2, "softmax")),
        initial_params=[
            {"W": np.full((2, 3), 1e-300), "b": np.zeros(3)},
            {"W": np.array([[big, -big]] * 3), "b": np.zeros(2)},
        ],
    )
    config = TrainingConfig(
        loss="cce", optimizer="sgd", lr=1e-320, batch_size=1, epochs=1, shuffle=False
    )
    full: list[ev.Event] = []
    reason = Trainer(spec, config, data, sink=full.append).run()
    first = next(e for e in full if isinstance(e, ev.StepCompleted))
    assert first.grad_norms[0] == np.inf  # the norm overflowed ...
    dW = next(
        e.value
        for e in full
        if isinstance(e, ev.GradientComputed) and e.name == "dW" and e.layer == 0
    )
    assert np.isfinite(dW).all()  # ... though no entry did
    few = _Wants("step_completed", "training_diverged", "session_ended")
    assert Trainer(spec, config, data, sink=few).run() == reason
    assert Trainer(spec, config, data).run() == reason
    assert few.log == [e for e in full if e.kind in few.wants]
