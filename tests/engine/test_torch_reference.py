"""Compare every value the trainer emits with PyTorch autograd, in float64.

Torch gets only the engine's starting weights, batches and dropout masks (read
from the events); it computes every forward value, gradient and update itself.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import cycle
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import (
    ACTIVATIONS,
    OPTIMIZERS,
    Dataset,
    LayerSpec,
    NetworkSpec,
    Trainer,
    TrainingConfig,
)
from engine import events as ev
from engine.losses import clip_eps

RTOL = 1e-12
N_SAMPLES = 7
N_FEATURES = 3
N_HIDDEN = 4

# Torch's name for each engine optimizer state array.
TORCH_STATE = {
    "velocity": "momentum_buffer",
    "s": "square_avg",
    "m": "exp_avg",
    "v": "exp_avg_sq",
}


@dataclass(frozen=True)
class Case:
    """One network, loss and optimizer to train in both engines."""

    hidden: tuple[str, ...]
    output: str
    loss: str
    optimizer: str = "sgd"
    l2: float = 0.0
    dropout: tuple[float, ...] = ()
    n_out: int = 3

    @property
    def id(self) -> str:
        drop = "-dropout" if any(self.dropout) else ""
        l2 = "-l2" if self.l2 else ""
        layers = "+".join((*self.hidden, self.output))
        return f"{layers}-{self.loss}-{self.optimizer}{l2}{drop}"


_ALL_ACTIVATIONS = tuple(ACTIVATIONS)
_OPTIMIZERS = tuple(OPTIMIZERS)

CASES = [
    # Every activation in two hidden layers, including softmax (its Jacobian).
    *(
        Case((act, act), "identity", "mse", opt)
        for act, opt in zip(_ALL_ACTIVATIONS, cycle(_OPTIMIZERS))
    ),
    # Every activation as the output of an mse network (unfused backward).
    *(
        Case(("tanh",), act, "mse", opt, l2=0.03)
        for act, opt in zip(_ALL_ACTIVATIONS, cycle(_OPTIMIZERS[::-1]))
    ),
    # Every cross-entropy pairing: two fused, two through dy_hat.
    *(
        Case(("relu",), out, loss, "momentum", l2=l2)
        for out, loss in (
            ("sigmoid", "binary_cross_entropy"),
            ("softmax", "binary_cross_entropy"),
            ("softmax", "categorical_cross_entropy"),
            ("sigmoid", "categorical_cross_entropy"),
        )
        for l2 in (0.0, 0.05)
    ),
    Case(("tanh",), "sigmoid", "binary_cross_entropy", "adam", n_out=1),
    # Every optimizer, with and without L2 and dropout.
    *(
        Case(
            ("tanh", "leaky_relu"),
            "softmax",
            "categorical_cross_entropy",
            opt,
            l2=l2,
            dropout=dropout,
        )
        for opt in _OPTIMIZERS
        for l2 in (0.0, 0.05)
        for dropout in ((), (0.3, 0.2))
    ),
    Case(("softmax", "sigmoid"), "sigmoid", "mse", "adam", dropout=(0.5, 0.0)),
]


def assert_close(ours: object, theirs: object, what: str, terms: object = None) -> None:
    """Assert ``|ours - theirs| <= RTOL * max(|theirs|, terms)`` element by element.

    ``terms`` is the sum of the absolute values of the terms a computed value
    is a sum of (None when no sum can cancel).  Rounding errors of a sum are
    proportional to its terms, not to its result: where terms cancel, the
    result is zero-ish compared with them, and ``RTOL * terms`` is then the
    only meaningful bound (an absolute tolerance at the scale of the terms).
    """
    a = np.asarray(ours, dtype=np.float64)
    b = _numpy(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    scale = np.abs(b) if terms is None else np.maximum(np.abs(b), _numpy(terms))
    err = np.abs(a - b)
    bound = RTOL * scale
    if not np.all(err <= bound):
        worst = np.unravel_index(np.argmax(err - bound), err.shape)
        rel = err[worst] / max(scale[worst], 1e-300)
        msg = (
            f"{what}: at {worst} ours {a[worst]!r} vs torch {b[worst]!r} "
            f"(relative error {rel:.2e})"
        )
        raise AssertionError(msg)


def _numpy(x: object) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x, dtype=np.float64)


def _make_data(case: Case, seed: int) -> Dataset:
    g = np.random.default_rng(seed)
    X = g.normal(size=(N_SAMPLES, N_FEATURES))
    if case.loss == "mse":
        y, task = g.normal(size=(N_SAMPLES, case.n_out)), "regression"
    elif case.n_out == 1:
        y, task = g.integers(0, 2, size=(N_SAMPLES, 1)).astype(float), "binary"
    else:
        # One-hot rows, every class present.
        labels = np.arange(N_SAMPLES) % case.n_out
        y, task = np.eye(case.n_out)[g.permutation(labels)], "multiclass"
    names = tuple(f"x{i}" for i in range(N_FEATURES))
    return Dataset("torch", task, X, y, X[:0], y[:0], names)


def _run_engine(case: Case, seed: int) -> tuple[list[ev.Event], Dataset]:
    """Train the case in the engine for at least 6 steps; return its events."""
    data = _make_data(case, seed)
    dropout = case.dropout or (0.0,) * len(case.hidden)
    layers = [
        LayerSpec(N_HIDDEN, act, dropout=p)
        for act, p in zip(case.hidden, dropout, strict=True)
    ]
    spec = NetworkSpec(N_FEATURES, (*layers, LayerSpec(case.n_out, case.output)))
    full_batch = case.optimizer == "gd"
    adaptive = case.optimizer in ("rmsprop", "adam")
    config = TrainingConfig(
        loss=case.loss,
        optimizer=case.optimizer,
        lr=0.01 if adaptive else 0.1,
        # 7 rows in batches of 3 give batches of 3, 3 and 1 per epoch.
        batch_size=None if full_batch else 3,
        epochs=6 if full_batch else 2,
        seed=seed,
        l2=case.l2,
    )
    log: list[ev.Event] = []
    assert Trainer(spec, config, data, sink=log.append).run() == "completed"
    return log, data


def _torch_optimizer(
    config: dict[str, Any], params: list[torch.Tensor]
) -> torch.optim.Optimizer:
    name, lr = config["optimizer"], float(config["lr"])
    momentum = float(config["momentum"])
    eps = float(config["eps"])
    if name in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True)
    if name == "rmsprop":
        rho = float(config["rho"])
        return torch.optim.RMSprop(params, lr=lr, alpha=rho, eps=eps)
    assert name == "adam"
    betas = (float(config["beta1"]), float(config["beta2"]))
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)


def _activation(name: str, z: torch.Tensor) -> torch.Tensor:
    if name == "identity":
        return z
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "relu":
        return torch.relu(z)
    if name == "leaky_relu":
        return F.leaky_relu(z, 0.01)
    assert name == "softmax"
    return torch.softmax(z, dim=1)


def _per_sample_from_probs(
    loss: str, y_hat: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Per-sample losses written from the outputs, with the engine's clipping."""
    if loss == "mse":
        return ((y_hat - y) ** 2).mean(dim=1)
    eps = clip_eps(np.dtype(np.float64))
    if loss == "binary_cross_entropy":
        p = y_hat.clamp(eps, 1.0 - eps)
        return -(y * torch.log(p) + (1.0 - y) * torch.log1p(-p)).mean(dim=1)
    p = y_hat.clamp(eps, 1.0)
    return -(y * torch.log(p)).sum(dim=1)


def _per_sample_from_logits(
    loss: str, z: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Per-sample losses of the fused pairs, by torch's own stable functions."""
    if loss == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(z, y, reduction="none").mean(dim=1)
    return -(y * torch.log_softmax(z, dim=1)).sum(dim=1)


def _by_step(log: list[ev.Event]) -> dict[int, list[ev.Event]]:
    steps: dict[int, list[ev.Event]] = defaultdict(list)
    for e in log:
        if not isinstance(
            e, ev.SessionStarted | ev.ParametersInitialized | ev.SessionEnded
        ):
            steps[e.step].append(e)
    return steps


def _check_against_torch(log: list[ev.Event], data: Dataset) -> int:
    """Re-run the logged training in torch, comparing every event; count checks."""
    started = log[0]
    assert isinstance(started, ev.SessionStarted)
    config, fused = started.config, started.fused
    loss_name = config["loss"]
    l2 = float(config["l2"])
    acts = [layer["activation"] for layer in started.network["layers"]]
    acts = ["identity" if a == "linear" else a for a in acts]
    n_layers = len(acts)

    # Same starting weights as the engine.
    inits = [e for e in log if isinstance(e, ev.ParametersInitialized)]
    flat = [
        torch.tensor(arr, dtype=torch.float64, requires_grad=True)
        for e in inits
        for arr in (e.W, e.b)
    ]
    Ws, bs = flat[0::2], flat[1::2]
    opt = _torch_optimizer(config, flat)
    # Sum of |terms| each parameter and optimizer state array is a sum of.
    param_terms = [p.detach().abs() for p in flat]
    state_terms = [torch.zeros_like(p) for p in flat]

    checks = 0
    steps = _by_step(log)
    assert len(steps) >= 5
    for step, events in sorted(steps.items()):
        # Same batch and dropout masks as the engine.
        batch = events[0]
        assert isinstance(batch, ev.BatchSampled)
        X = torch.tensor(data.X_train[batch.indices])
        y = torch.tensor(data.y_train[batch.indices])
        assert_close(batch.X, X, "X")
        assert_close(batch.y, y, "y")
        drops = {e.layer: e for e in events if isinstance(e, ev.DropoutApplied)}

        # Forward pass, keeping every intermediate tensor.
        a_prevs, zs, a_acts, a_outs = [], [], [], []
        a = X
        for i in range(n_layers):
            a_prevs.append(a)
            z = a @ Ws[i] + bs[i]
            a = a_act = _activation(acts[i], z)
            if i in drops:
                mask = torch.tensor(drops[i].mask.astype(np.float64))
                a = a_act * mask / drops[i].keep_prob
            zs.append(z)
            a_acts.append(a_act)
            a_outs.append(a)
        y_hat = a_outs[-1]
        if fused:
            per_sample = _per_sample_from_logits(loss_name, zs[-1], y)
        else:
            per_sample = _per_sample_from_probs(loss_name, y_hat, y)
        data_loss = per_sample.mean()
        penalty = 0.5 * l2 * sum((W**2).sum() for W in Ws)
        loss = data_loss + penalty

        # Every gradient by autograd; dy_hat from the outputs even when fused.
        inputs = [*zs, *a_outs[:-1], *Ws, *bs]
        got = torch.autograd.grad(loss, inputs, retain_graph=True)
        dz = got[:n_layers]
        da = got[n_layers : 2 * n_layers - 1]
        dW = got[2 * n_layers - 1 : 3 * n_layers - 1]
        db = got[3 * n_layers - 1 :]
        prob_loss = _per_sample_from_probs(loss_name, y_hat, y).mean()
        (dy_hat,) = torch.autograd.grad(prob_loss, [y_hat])
        want = {(None, "dy_hat"): dy_hat}
        for i in range(n_layers):
            want[(i, "dz")] = dz[i]
            want[(i, "dW")] = dW[i]
            want[(i, "db")] = db[i]
            if i > 0:
                want[(i, "da_prev")] = da[i - 1]
            if i in drops:
                want[(i, "da")] = da[i]
        with torch.no_grad():
            grad_terms = _gradient_terms(
                loss_name,
                fused,
                acts,
                y_hat,
                y,
                a_prevs,
                a_acts,
                drops,
                param_terms,
                l2,
            )
            z_terms = [
                a_prevs[i].abs() @ param_terms[2 * i] + param_terms[2 * i + 1]
                for i in range(n_layers)
            ]

        # Optimizer step in torch, with the gradients just computed.
        before = [p.detach().clone() for p in flat]
        before_terms = list(param_terms)
        for i in range(n_layers):
            Ws[i].grad = dW[i].clone()
            bs[i].grad = db[i].clone()
        opt.step()
        t = step + 1
        for k, p in enumerate(flat):
            param_terms[k] = param_terms[k] + (p.detach() - before[k]).abs()
            state_terms[k] = _state_terms(config, state_terms[k], p.grad)

        # Compare every event of the step.
        seen_grads = []
        for e in events:
            if isinstance(e, ev.WeightedSumComputed):
                i, at = e.layer, f"step {step} layer {e.layer}"
                assert_close(e.a_prev, a_prevs[i], f"{at} a_prev")
                assert_close(e.W, before[2 * i], f"{at} W", before_terms[2 * i])
                assert_close(e.b, before[2 * i + 1], f"{at} b", before_terms[2 * i + 1])
                assert_close(e.z, zs[i], f"{at} z", z_terms[i])
            elif isinstance(e, ev.ActivationComputed):
                at = f"step {step} layer {e.layer}"
                assert_close(e.z, zs[e.layer], f"{at} z", z_terms[e.layer])
                assert_close(e.a, a_acts[e.layer], f"{at} a")
            elif isinstance(e, ev.DropoutApplied):
                at = f"step {step} layer {e.layer}"
                assert_close(e.a_before, a_acts[e.layer], f"{at} a before dropout")
                assert_close(e.a, a_outs[e.layer], f"{at} a after dropout")
            elif isinstance(e, ev.LossComputed):
                at = f"step {step}"
                assert_close(e.y_hat, y_hat, f"{at} y_hat")
                assert_close(e.y, y, f"{at} y")
                assert_close(e.per_sample, per_sample, f"{at} per-sample loss")
                assert_close(e.data_loss, data_loss, f"{at} data loss")
                assert_close(e.l2_penalty, penalty, f"{at} L2 penalty")
                assert_close(e.loss, loss, f"{at} loss")
            elif isinstance(e, ev.GradientComputed):
                key = (e.layer, e.name)
                at = f"step {step} layer {e.layer} {e.name}"
                assert_close(e.value, want[key], at, grad_terms[key])
                seen_grads.append(key)
            elif isinstance(e, ev.ParametersUpdated):
                k = 2 * e.layer + (e.name == "b")
                p = flat[k]
                at = f"step {step} layer {e.layer} {e.name}"
                assert e.t == t
                assert_close(e.before, before[k], f"{at} before", before_terms[k])
                grad_key = (e.layer, f"d{e.name}")
                assert_close(e.grad, p.grad, f"{at} grad", grad_terms[grad_key])
                assert_close(e.after, p, f"{at} after", param_terms[k])
                _check_optimizer_state(e, opt.state[p], state_terms[k], config, at)
            elif isinstance(e, ev.StepCompleted):
                assert_close(e.loss, loss, f"step {step} summary loss")
                norms = torch.stack([torch.linalg.norm(g) for g in dW])
                assert_close(e.grad_norms, norms, f"step {step} grad norms")
            checks += 1
        assert sorted(seen_grads, key=str) == sorted(want, key=str)
    return checks


def _gradient_terms(
    loss: str,
    fused: bool,
    acts: list[str],
    y_hat: torch.Tensor,
    y: torch.Tensor,
    a_prevs: list[torch.Tensor],
    a_acts: list[torch.Tensor],
    drops: dict[int | None, ev.DropoutApplied],
    param_terms: list[torch.Tensor],
    l2: float,
) -> dict[tuple[int | None, str], torch.Tensor]:
    """Return the |terms| of every gradient, by back-propagating absolute values.

    The backward pass is linear in ``dy_hat``; running it with every factor
    replaced by its absolute value gives, for each gradient, the sum of the
    absolute values of the terms it adds up (products of a ``y_hat - y``
    difference with Jacobian entries), which bounds its rounding error.
    """
    out: dict[tuple[int | None, str], torch.Tensor] = {}
    size, n_layers = y.numel(), len(acts)
    diff_terms = y_hat.abs() + y.abs()
    p = y_hat.clamp(clip_eps(np.dtype(np.float64)), 1.0 - 1e-12)
    if loss == "mse":
        out[(None, "dy_hat")] = 2.0 / size * diff_terms
    elif loss == "binary_cross_entropy":
        out[(None, "dy_hat")] = diff_terms / (p * (1.0 - p)) / size
    else:
        out[(None, "dy_hat")] = y.abs() / p / y.shape[0]
    da = out[(None, "dy_hat")]
    for i in range(n_layers - 1, -1, -1):
        if i in drops:
            out[(i, "da")] = da
            da = da * torch.tensor(drops[i].mask.astype(np.float64))
            da = da / drops[i].keep_prob
        a = a_acts[i]
        if fused and i == n_layers - 1:
            n = size if loss == "binary_cross_entropy" else y.shape[0]
            dz = diff_terms / n
        elif acts[i] == "softmax":
            dz = a * (da + (da * a).sum(dim=1, keepdim=True))
        elif acts[i] == "sigmoid":
            dz = da * a * (1.0 - a)
        elif acts[i] == "tanh":
            dz = da * (1.0 - a * a)
        elif acts[i] == "relu":
            dz = da * (a > 0)
        elif acts[i] == "leaky_relu":
            dz = torch.where(a > 0, da, 0.01 * da)
        else:
            dz = da
        out[(i, "dz")] = dz
        out[(i, "dW")] = a_prevs[i].abs().T @ dz + l2 * param_terms[2 * i]
        out[(i, "db")] = dz.sum(dim=0)
        if i > 0:
            da = dz @ param_terms[2 * i].T
            out[(i, "da_prev")] = da
    return out


def _state_terms(
    config: dict[str, Any], terms: torch.Tensor, grad: torch.Tensor
) -> torch.Tensor:
    """Return the |terms| of a momentum-like state after one update."""
    if config["optimizer"] in ("momentum", "nesterov"):
        return float(config["momentum"]) * terms + grad.abs()
    if config["optimizer"] == "adam":
        beta1 = float(config["beta1"])
        return beta1 * terms + (1.0 - beta1) * grad.abs()
    return terms


def _check_optimizer_state(
    e: ev.ParametersUpdated,
    state: dict[str, torch.Tensor],
    terms: torch.Tensor,
    config: dict[str, Any],
    at: str,
) -> None:
    """Compare the engine's optimizer state with torch's, name by name."""
    expected = {
        "gd": set(),
        "sgd": set(),
        "momentum": {"velocity"},
        "nesterov": {"velocity"},
        "rmsprop": {"s"},
        "adam": {"m", "v", "m_hat", "v_hat"},
    }[e.optimizer]
    assert set(e.state) == expected
    # velocity and m are sums of gradients of either sign: they may cancel.
    # s and v are sums of squares: they never do.
    for name in ("velocity", "m"):
        if name in expected:
            assert_close(e.state[name], state[TORCH_STATE[name]], f"{at} {name}", terms)
    for name in ("s", "v"):
        if name in expected:
            assert_close(e.state[name], state[TORCH_STATE[name]], f"{at} {name}")
    if e.optimizer == "adam":
        t = e.t
        beta1, beta2 = float(config["beta1"]), float(config["beta2"])
        assert int(state["step"]) == t
        m_hat = state["exp_avg"] / (1.0 - beta1**t)
        v_hat = state["exp_avg_sq"] / (1.0 - beta2**t)
        m_hat_terms = terms / (1.0 - beta1**t)
        assert_close(e.state["m_hat"], m_hat, f"{at} m_hat", m_hat_terms)
        assert_close(e.state["v_hat"], v_hat, f"{at} v_hat")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_trainer_matches_torch_autograd_event_by_event(case: Case) -> None:
    log, data = _run_engine(case, seed=len(case.id))
    checks = _check_against_torch(log, data)
    assert checks > 50


def test_cases_cover_every_activation_loss_and_optimizer() -> None:
    hidden = {act for c in CASES for act in c.hidden}
    outputs = {c.output for c in CASES}
    assert hidden == outputs == set(_ALL_ACTIVATIONS)
    pairs = {(c.output, c.loss) for c in CASES if c.loss != "mse"}
    assert {
        ("sigmoid", "binary_cross_entropy"),
        ("softmax", "binary_cross_entropy"),
        ("softmax", "categorical_cross_entropy"),
        ("sigmoid", "categorical_cross_entropy"),
    } <= pairs
    combos = {(c.optimizer, bool(c.l2), any(c.dropout)) for c in CASES}
    wanted = {(o, l2, d) for o in _OPTIMIZERS for l2 in (0, 1) for d in (0, 1)}
    assert wanted <= combos
