"""Check every back-propagated gradient against central finite differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import engine.gradcheck
from engine import (
    ACTIVATIONS,
    ConfigError,
    Dataset,
    LayerSpec,
    NetworkSpec,
    Trainer,
    TrainingConfig,
    backward,
    forward,
    get_activation,
    get_loss,
)
from engine.activations import Activation
from engine.gradcheck import GradCheckReport, gradient_check, relative_difference
from engine.losses import LOSSES, Loss
from engine.network import Params, Trace

TOLERANCE = 1e-7
H = 1e-6
N_SAMPLES, N_IN, N_HIDDEN, N_OUT = 5, 3, 4, 3


def _accepted(output: str, loss: str) -> bool:
    """Return True when the trainer accepts ``output`` as the output for ``loss``."""
    X = np.zeros((2, 1))
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    data = Dataset("probe", "multiclass", X, y, X[:0], y[:0], ("x",))
    spec = NetworkSpec(1, (LayerSpec(2, output),))
    try:
        Trainer(spec, TrainingConfig(loss=loss), data)
    except ConfigError:
        return False
    return True


PAIRS = [
    (output, loss)
    for loss in LOSSES
    for output in ACTIVATIONS
    if _accepted(output, loss)
]


def _targets(loss: str, g: np.random.Generator, n_out: int = N_OUT) -> np.ndarray:
    if loss == "mse":
        return g.normal(size=(N_SAMPLES, n_out))
    if loss == "binary_cross_entropy":
        return g.integers(0, 2, size=(N_SAMPLES, n_out)).astype(float)
    return np.eye(n_out)[g.integers(0, n_out, size=N_SAMPLES)]


def _params(g: np.random.Generator, sizes: tuple[int, ...]) -> Params:
    return [
        {"W": g.normal(0.0, 0.8, size=(m, n)), "b": g.normal(0.0, 0.3, size=n)}
        for m, n in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def _numeric(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Return the central differences of ``f`` at ``x``, entry by entry."""
    x = x.astype(np.float64, copy=True)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + H
        plus = f(x)
        x[idx] = orig - H
        minus = f(x)
        x[idx] = orig
        out[idx] = (plus - minus) / (2 * H)
    return out


class Net:
    """A network with fixed dropout masks, as a function of any intermediate value."""

    def __init__(
        self,
        params: Params,
        activations: list[Activation],
        loss: Loss,
        y: np.ndarray,
        tr: Trace,
        keep_probs: list[float] | None,
        l2: float,
        fused: bool,
    ) -> None:
        self.params, self.acts, self.loss, self.y = params, activations, loss, y
        self.masks, self.keep, self.l2, self.fused = tr.masks, keep_probs, l2, fused

    def data_loss(self, y_hat: np.ndarray, z_out: np.ndarray) -> float:
        if self.fused:
            return float(self.loss.forward_from_logits(z_out, self.y).mean())
        return float(self.loss.forward(y_hat, self.y).mean())

    def from_input(
        self, layer: int, a: np.ndarray, params: Params | None = None
    ) -> float:
        """Return the total loss when ``a`` is the input of ``layer``."""
        ps = self.params if params is None else params
        z = a @ ps[layer]["W"] + ps[layer]["b"]
        return self.from_z(layer, z, ps)

    def from_z(self, layer: int, z: np.ndarray, params: Params | None = None) -> float:
        """Return the total loss when ``z`` is the weighted sum of ``layer``."""
        ps = self.params if params is None else params
        penalty = 0.5 * self.l2 * sum(float((p["W"] ** 2).sum()) for p in ps)
        a = self.acts[layer].forward(z)
        mask = self.masks[layer]
        if mask is not None:
            assert self.keep is not None
            a = a * mask / self.keep[layer]
        if layer == len(ps) - 1:
            return self.data_loss(a, z) + penalty
        return self.from_input(layer + 1, a, ps)

    def from_param(self, X: np.ndarray, layer: int, key: str) -> Callable[..., float]:
        def f(value: np.ndarray) -> float:
            ps = [dict(p) for p in self.params]
            ps[layer][key] = value
            return self.from_input(0, X, ps)

        return f


def _check_all_gradients(
    hidden: tuple[str, ...],
    output: str,
    loss_name: str,
    l2: float,
    dropout: tuple[float, ...] = (),
    fused: bool | None = None,
    seed: int = 0,
) -> int:
    """Compare each gradient ``backward`` computes with finite differences."""
    g = np.random.default_rng(seed)
    n_out = 1 if (output == "sigmoid" and seed % 2) else N_OUT
    sizes = (N_IN, *(N_HIDDEN for _ in hidden), n_out)
    params = _params(g, sizes)
    X = g.normal(size=(N_SAMPLES, N_IN))
    y = _targets(loss_name, g, n_out)
    acts = [get_activation(a) for a in (*hidden, output)]
    loss = get_loss(loss_name)
    keep = [1.0 - p for p in (*dropout, 0.0)] if dropout else None
    if fused is None:
        fused = loss.fused_with == output
    tr = forward(params, X, acts, keep, np.random.default_rng(seed))
    backward(tr, params, y, acts, loss, keep, l2, fused)
    net = Net(params, acts, loss, y, tr, keep, l2, fused)

    checked = 0
    for layer, name, value in tr.grads:
        if name == "dy_hat":
            numeric = _numeric(lambda v: float(loss.forward(v, y).mean()), tr.y_hat)
        elif name == "dz":
            numeric = _numeric(lambda v, i=layer: net.from_z(i, v), tr.z[layer])
        elif name == "da":
            numeric = _numeric(lambda v, i=layer: net.from_input(i + 1, v), tr.a[layer])
        elif name == "da_prev":
            numeric = _numeric(
                lambda v, i=layer: net.from_input(i, v), tr.a_prev[layer]
            )
        else:
            key = name[1:]
            numeric = _numeric(net.from_param(X, layer, key), params[layer][key])
        diff = relative_difference(value, numeric)
        assert diff <= TOLERANCE, f"{name} of layer {layer}: difference {diff:.2e}"
        checked += 1
    return checked


@pytest.mark.parametrize("l2", [0.0, 0.1], ids=["no-l2", "l2"])
@pytest.mark.parametrize(("output", "loss"), PAIRS, ids=[f"{o}-{s}" for o, s in PAIRS])
@pytest.mark.parametrize("hidden", list(ACTIVATIONS))
def test_backward_matches_finite_differences_for_every_gradient(
    hidden: str, output: str, loss: str, l2: float
) -> None:
    seed = len(hidden) + 7 * len(output) + len(loss)
    checked = _check_all_gradients((hidden,), output, loss, l2, seed=seed)
    # dy_hat, then dz, dW, db per layer and da_prev for layer 1.
    assert checked == 1 + 2 * 3 + 1


@pytest.mark.parametrize("hidden", list(ACTIVATIONS))
def test_backward_matches_finite_differences_through_dropout(hidden: str) -> None:
    checked = _check_all_gradients(
        (hidden, "tanh"), "softmax", "categorical_cross_entropy", 0.05, (0.4, 0.25)
    )
    # dy_hat; per layer dz, dW, db; da_prev for layers 1, 2; da for layers 0, 1.
    assert checked == 1 + 3 * 3 + 2 + 2


@pytest.mark.parametrize(
    ("output", "loss"),
    [("sigmoid", "binary_cross_entropy"), ("softmax", "categorical_cross_entropy")],
)
def test_unfused_backward_of_fused_pairs_matches_finite_differences(
    output: str, loss: str
) -> None:
    _check_all_gradients(("tanh",), output, loss, 0.0, fused=False)


def test_pairings_accepted_are_mse_with_any_output_and_cross_entropy_with_probs() -> (
    None
):
    expected = {("mse", act) for act in ACTIVATIONS}
    for loss in ("binary_cross_entropy", "categorical_cross_entropy"):
        expected |= {(loss, "sigmoid"), (loss, "softmax")}
    assert {(loss, out) for out, loss in PAIRS} == expected


@pytest.mark.parametrize(
    ("output", "loss"),
    [("sigmoid", "binary_cross_entropy"), ("softmax", "categorical_cross_entropy")],
)
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_fused_output_rule_agrees_with_the_general_chain_rule(
    output: str, loss: str, l2: float, rng: np.random.Generator
) -> None:
    params = _params(rng, (N_IN, N_HIDDEN, N_OUT))
    X = rng.normal(size=(N_SAMPLES, N_IN))
    y = _targets(loss, rng)
    acts = [get_activation("tanh"), get_activation(output)]
    loss_fn = get_loss(loss)
    fused = backward(
        forward(params, X, acts), params, y, acts, loss_fn, l2=l2, fused=True
    )
    general = backward(
        forward(params, X, acts), params, y, acts, loss_fn, l2=l2, fused=False
    )
    assert [(i, n) for i, n, _ in fused.grads] == [(i, n) for i, n, _ in general.grads]
    for (layer, name, a), (_, _, b) in zip(fused.grads, general.grads, strict=True):
        assert relative_difference(a, b) < 1e-13, f"{name} of layer {layer}"
    # The two ways of computing the loss agree as well.
    np.testing.assert_allclose(
        loss_fn.forward_from_logits(fused.z[-1], y),
        loss_fn.forward(fused.y_hat, y),
        rtol=1e-12,
    )


def test_softmax_backward_applies_the_full_jacobian(rng: np.random.Generator) -> None:
    z = rng.normal(size=(4, 5))
    da = rng.normal(size=(4, 5))
    softmax = get_activation("softmax")
    a = softmax.forward(z)
    for row in range(4):
        jacobian = np.diag(a[row]) - np.outer(a[row], a[row])
        np.testing.assert_allclose(
            softmax.backward(z, a, da)[row], jacobian.T @ da[row], rtol=1e-12
        )


# -- the gradient checker itself -----------------------------------------------


Case11 = tuple[Params, np.ndarray, np.ndarray, float]


@pytest.fixture
def case11(load_case: Callable[[str], dict[str, Any]]) -> Case11:
    """Return case C11's parameters, XOR inputs and targets, and numeric step."""
    c = load_case("case11.json")
    params = [
        {"W": np.array(c["W1"], float), "b": np.array(c["b1"], float)},
        {"W": np.array(c["W2"], float), "b": np.array(c["b2"], float)},
    ]
    X = np.array(c["X"], float)
    y = np.array(c["y"], float)[:, None]
    return params, X, y, float(c["numeric_step"])


def _plant(
    monkeypatch: pytest.MonkeyPatch, layer: int, name: str, factor: float
) -> None:
    """Make the checker's backward pass scale one gradient: a planted bug."""
    real_backward = engine.gradcheck.backward

    def buggy_backward(*args: object, **kwargs: object) -> Trace:
        tr = real_backward(*args, **kwargs)  # type: ignore[arg-type]
        tr.grads[:] = [
            (i, n, v * factor if (i, n) == (layer, name) else v) for i, n, v in tr.grads
        ]
        return tr

    monkeypatch.setattr(engine.gradcheck, "backward", buggy_backward)


def _check_case11(case11: Case11) -> GradCheckReport:
    params, X, y, step = case11
    return gradient_check(["tanh", "sigmoid"], params, X, y, "bce", step=step)


def test_case11_correct_backprop_passes_the_gradient_check(case11: Case11) -> None:
    report = _check_case11(case11)
    assert report.passed
    assert report.worst_group is None
    # The difference is rounding noise of order 1e-16 * L / h.
    assert report.difference == pytest.approx(7.9e-9, rel=0.5)
    assert list(report.groups) == ["W1", "b1", "W2", "b2"]
    assert all(d < 1e-7 for d in report.groups.values())


def test_case11_doubled_dW2_fails_and_names_W2(
    monkeypatch: pytest.MonkeyPatch, case11: Case11
) -> None:
    _plant(monkeypatch, 1, "dW", 2.0)
    report = _check_case11(case11)
    assert not report.passed
    assert report.difference == pytest.approx(0.200, abs=5e-4)
    assert report.groups["W2"] == pytest.approx(1 / 3, abs=5e-4)
    assert report.worst_group == "W2"
    assert "FAILED (look at W2)" in report.summary()


def test_case11_db1_times_four_fails_and_names_b1(
    monkeypatch: pytest.MonkeyPatch, case11: Case11
) -> None:
    _plant(monkeypatch, 0, "db", 4.0)
    report = _check_case11(case11)
    assert not report.passed
    assert report.difference == pytest.approx(0.489, abs=5e-4)
    assert report.groups["b1"] == pytest.approx(0.600, abs=5e-4)
    assert report.worst_group == "b1"
    assert report.groups["W1"] < 1e-7


def test_gradient_check_takes_a_network_spec_and_leaves_params_unchanged(
    case11: Case11,
) -> None:
    params, X, y, _ = case11
    copies = [{k: v.copy() for k, v in p.items()} for p in params]
    spec = NetworkSpec(2, (LayerSpec(3, "tanh"), LayerSpec(1, "sigmoid")))
    report = gradient_check(spec, params, X, y, "binary_cross_entropy", l2=0.3)
    assert report.passed
    for p, c in zip(params, copies, strict=True):
        assert all(np.array_equal(p[k], c[k]) for k in p)
    for name, value in report.analytic.items():
        layer, key = int(name[1:]) - 1, name[0]
        assert value.shape == report.numeric[name].shape == params[layer][key].shape


@pytest.mark.parametrize(("output", "loss"), PAIRS, ids=[f"{o}-{s}" for o, s in PAIRS])
def test_gradient_check_passes_for_every_accepted_pairing(
    output: str, loss: str, rng: np.random.Generator
) -> None:
    params = _params(rng, (N_IN, N_HIDDEN, N_OUT))
    X = rng.normal(size=(N_SAMPLES, N_IN))
    report = gradient_check(
        ["sigmoid", output], params, X, _targets(loss, rng), loss, l2=0.01
    )
    assert report.passed, report.summary()


def test_gradient_check_reports_zero_difference_for_all_zero_gradients() -> None:
    params = [{"W": np.zeros((2, 1)), "b": np.zeros(1)}]
    X = np.array([[1.0, 2.0]])
    report = gradient_check(["identity"], params, X, np.zeros((1, 1)), "mse")
    assert report.difference == 0.0
    assert report.passed


def test_gradient_check_rejects_parameters_that_do_not_chain(case11: Case11) -> None:
    params, X, y, _ = case11
    with pytest.raises(ConfigError, match="Layer 1 gets 3 inputs"):
        gradient_check(["tanh", "sigmoid"], params[:1] * 2, X, y, "bce")
    with pytest.raises(ConfigError, match="one activation per layer"):
        gradient_check(["tanh"], params, X, y, "bce")
    with pytest.raises(ConfigError, match="as a list"):
        gradient_check("tanh", params, X, y, "bce")
    with pytest.raises(ConfigError, match="y has 2 columns"):
        gradient_check(["tanh", "sigmoid"], params, X, np.hstack([y, y]), "bce")
    with pytest.raises(ConfigError, match="step must be"):
        gradient_check(["tanh", "sigmoid"], params, X, y, "bce", step=0.0)
