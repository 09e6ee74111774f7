"""Explain any recorded number: its formula, its operands, and theirs in turn.

A :class:`Ref` names one number of the run: an entry of a weighted sum ``z``,
an activation ``a``, a per-sample ``loss``, a gradient (``dz``, ``da``,
``dW``, ``db``), or a parameter (``W``, ``b``) as a step used it.
:func:`explain` reads the step's events from the log and returns the formula
with the actual operands, each of them a :class:`Ref` that can be explained in
turn, down to the leaves: the inputs ``x`` and targets ``y`` of the batch, the
initial parameters, the learning rate.  Each explanation also recomputes its
number from the operands, so a reader sees that the formula gives the
recorded value.

Indices count from 0 here (the app shows them from 1); for ``z``, ``a``,
``dz`` and ``da`` the first index is the sample's row in the step's batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine import events as ev
from engine.activations import get_activation
from engine.losses import get_loss
from engine.optimizers import get_optimizer
from sessions.session import Session

__all__ = ["KINDS", "Explanation", "Operand", "Ref", "explain"]

KINDS = ("z", "a", "loss", "dz", "da", "dW", "db", "W", "b", "x", "y")
"""The numbers :func:`explain` knows."""

MAX_TERMS = 12
"""Sums longer than this list their first terms and count the rest."""


@dataclass(frozen=True)
class Ref:
    """One number of the run: ``kind`` at ``step``, ``layer`` (0-based), ``index``."""

    kind: str
    step: int
    layer: int | None = None
    index: tuple[int, ...] = ()


@dataclass(frozen=True)
class Operand:
    """One operand of a formula: its name, value and (unless a leaf) its Ref."""

    name: str
    value: float
    ref: Ref | None = None


@dataclass
class Explanation:
    """How one number was computed."""

    ref: Ref
    label: str
    value: float
    formula: str
    operands: list[Operand] = field(default_factory=list)
    recomputed: float | None = None
    more_terms: int = 0
    """Terms of a long sum not listed in ``operands``."""

    @property
    def agrees(self) -> bool:
        """Return True when the recomputed value matches the recorded one."""
        if self.recomputed is None:
            return True
        return math.isclose(self.recomputed, self.value, rel_tol=1e-12, abs_tol=1e-300)


def explain(session: Session, ref: Ref) -> Explanation:
    """Return the explanation of the number ``ref`` names in ``session``.

    Raises
    ------
    IndexError
        If the step, layer or index is not in the run.
    ValueError
        For an unknown kind, or a gradient the step did not compute.
    """
    if ref.kind not in KINDS:
        raise ValueError(f"Unknown number kind {ref.kind!r}; use one of {KINDS}.")
    events = session.step_events(ref.step)
    return _EXPLAIN[ref.kind](session, events, ref)


# -- helpers ---------------------------------------------------------------


def _one(
    events: list[ev.Event], cls: type, layer: int | None = None, **match: str
) -> ev.Event:
    for e in events:
        if isinstance(e, cls) and (layer is None or e.layer == layer):
            if all(getattr(e, k) == v for k, v in match.items()):
                return e
    what = cls.__name__ + ("" if layer is None else f" of layer {layer + 1}")
    raise ValueError(f"The step has no {what} {match or ''}".strip() + ".")


def _at(array: np.ndarray, index: tuple[int, ...]) -> float:
    if len(index) != array.ndim or not all(
        0 <= i < n for i, n in zip(index, array.shape, strict=False)
    ):
        raise IndexError(
            f"Entry {list(index)} is outside an array of shape {list(array.shape)}."
        )
    return float(array[index])


def _where(ref: Ref) -> str:
    layer = "" if ref.layer is None else f" of layer {ref.layer + 1}"
    entry = ", ".join(str(i + 1) for i in ref.index)
    return f"{ref.kind}[{entry}]{layer} at step {ref.step}"


def _sum_terms(
    pairs: list[tuple[Operand, Operand]],
) -> tuple[list[Operand], str, int]:
    """Return the operands and text of sum_k x_k y_k, listing at most MAX_TERMS."""
    shown = pairs[:MAX_TERMS]
    operands = [o for pair in shown for o in pair]
    text = " + ".join(f"{x.value:.6g}×{y.value:.6g}" for x, y in shown)
    more = len(pairs) - len(shown)
    if more:
        text += f" + … ({more} more terms)"
    return operands, text, more


def _fused(session: Session) -> bool:
    last = session.spec.layers[-1].activation
    return get_loss(session.config.loss).fused_with == last


# -- one function per kind -------------------------------------------------


def _x(session: Session, events: list[ev.Event], ref: Ref) -> Explanation:
    batch = _one(events, ev.BatchSampled)
    assert isinstance(batch, ev.BatchSampled)
    value = _at(batch.X, ref.index)
    n, i = ref.index
    row = int(batch.indices[n])
    name = (
        session.dataset.feature_names[i]
        if i < len(session.dataset.feature_names)
        else f"x{i + 1}"
    )
    return Explanation(
        ref,
        f"input {name} of training row {row + 1} (sample {n + 1} of the batch)",
        value,
        f"x = {value:.6g}: read from the dataset (a leaf: nothing computed it).",
    )


def _y(session: Session, events: list[ev.Event], ref: Ref) -> Explanation:
    batch = _one(events, ev.BatchSampled)
    assert isinstance(batch, ev.BatchSampled)
    value = _at(batch.y, ref.index)
    n, k = ref.index
    return Explanation(
        ref,
        f"target {k + 1} of training row {int(batch.indices[n]) + 1}",
        value,
        f"y = {value:.6g}: the label from the dataset (a leaf).",
    )


def _z(session: Session, events: list[ev.Event], ref: Ref) -> Explanation:
    e = _one(events, ev.WeightedSumComputed, ref.layer)
    assert isinstance(e, ev.WeightedSumComputed) and ref.layer is not None
    n, j = ref.index
    value = _at(e.z, (n, j))
    prev = "a" if ref.layer > 0 else "x"
    pairs = [
        (
            Operand(
                f"{prev}[{n + 1}, {i + 1}]",
                float(e.a_prev[n, i]),
                Ref(prev, ref.step, ref.layer - 1 if ref.layer > 0 else None, (n, i)),
            ),
            Operand(
                f"W[{i + 1}, {j + 1}]",
                float(e.W[i, j]),
                Ref("W", ref.step, ref.layer, (i, j)),
            ),
        )
        for i in range(e.W.shape[0])
    ]
    operands, text, more = _sum_terms(pairs)
    operands.append(
        Operand(f"b[{j + 1}]", float(e.b[j]), Ref("b", ref.step, ref.layer, (j,)))
    )
    recomputed = float(np.dot(e.a_prev[n], e.W[:, j]) + e.b[j])
    return Explanation(
        ref,
        f"weighted sum z of unit {j + 1}, layer {ref.layer + 1}, sample {n + 1}, "
        f"step {ref.step}",
        value,
        f"z = Σ_i {prev}_i W_ij + b_j = {text} + {float(e.b[j]):.6g} = {value:.6g}",
        operands,
        recomputed,
        more,
    )


def _a(session: Session, events: list[ev.Event], ref: Ref) -> Explanation:
    act = _one(events, ev.ActivationComputed, ref.layer)
    assert isinstance(act, ev.ActivationComputed) and ref.layer is not None
    n, j = ref.index
    g = get_activation(act.activation)
    row = act.z[n : n + 1]
    before = float(g.forward(row)[0, j])
    drop = next(
        (
            x
            for x in events
            if isinstance(x, ev.DropoutApplied) and x.layer == ref.layer
        ),
        None,
    )
    if act.activation == "softmax":
        operands = [
            Operand(
                f"z[{n + 1}, {k + 1}]",
                float(act.z[n, k]),
                Ref("z", ref.step, ref.layer, (n, k)),
            )
            for k in range(act.z.shape[1])
        ]
        formula = f"a = softmax(z)_{j + 1} = exp(z_{j + 1}) / Σ_k exp(z_k)"
    else:
        operands = [
            Operand(
                f"z[{n + 1}, {j + 1}]",
                float(act.z[n, j]),
                Ref("z", ref.step, ref.layer, (n, j)),
            )
        ]
        formula = (
            f"a = {act.activation}(z) = {act.activation}({float(act.z[n, j]):.6g})"
        )
    value = float(act.a[n, j])
    recomputed = before
    if drop is not None:
        kept = bool(drop.mask[n, j])
        value = float(drop.a[n, j])
        recomputed = before * kept / drop.keep_prob
        operands.append(Operand(f"dropout mask[{n + 1}, {j + 1}]", float(kept)))
        operands.append(Operand("keep probability", drop.keep_prob))
        formula += f", then dropout: × {int(kept)} / {drop.keep_prob:g}"
    return Explanation(
        ref,
        f"activation a of unit {j + 1}, layer {ref.layer + 1}, sample {n + 1}, "
        f"step {ref.step}",
        value,
        f"{formula} = {value:.6g}",
        operands,
        recomputed,
    )


def _loss(session: Session, events: list[ev.Event], ref: Ref) -> Explanation:
    e = _one(events, ev.LossComputed)
    assert isinstance(e, ev.LossComputed)
    (n,) = ref.index
    value = _at(e.per_sample, (n,))
    last = len(session.spec.layers) - 1
    loss = get_loss(e.loss_name)
    operands = [
        Operand(
            f"y_hat[{n + 1}, {k + 1}]",
            float(e.y_hat[n, k]),
            Ref("a", ref.step, last, (n, k)),
        )
        for k in range(e.y_hat.shape[1])
    ] + [
        Operand(
            f"y[{n + 1}, {k + 1}]", float(e.y[n, k]), Ref("y", ref.step, None, (n, k))
        )
        for k in range(e.y.shape[1])
    ]
    if _fused(session):
        z = _one(events, ev.WeightedSumComputed, last)
        assert isinstance(z, ev.WeightedSumComputed)
        recomputed = float(loss.forward_from_logits(z.z[n : n + 1], e.y[n : n + 1])[0])
        how = "computed stably from the output layer's z (log-sum-exp)"
    else:
        recomputed = float(loss.forward(e.y_hat[n : n + 1], e.y[n : n + 1])[0])
        how = "computed from y_hat"
    return Explanation(
        ref,
        f"loss of sample {n + 1} at step {ref.step} ({e.loss_name})",
        value,
        f"{loss.formula}, {how} = {value:.6g}",
        operands,
        recomputed,
    )


def _grad(events: list[ev.Event], layer: int | None, name: str) -> np.ndarray:
    e = _one(events, ev.GradientComputed, layer, name=name)
    assert isinstance(e, ev.GradientComputed)
    return e.value


def _dW(session: Session, events: list[ev.Event], ref: Ref) -> Explanation:
    assert ref.layer is not None
    i, j = ref.index
    dW = _grad(events, ref.layer, "dW")
    dz = _grad(events, ref.layer, "dz")
    ws = _one(events, ev.WeightedSumComputed, ref.layer)
    assert isinstance(ws, ev.WeightedSumComputed)
    value = _at(dW, (i, j))
    prev = "a" if ref.layer > 0 else "x"
    pairs = [
        (
            Operand(
                f"{prev}[{n + 1}, {i + 1}]",
                float(ws.a_prev[n, i]),
                Ref(prev, ref.step, ref.layer - 1 if ref.layer > 0 else None, (n, i)),
            ),
            Operand(
                f"dz[{n + 1}, {j + 1}]",
                float(dz[n, j]),
                Ref("dz", ref.step, ref.layer, (n, j)),
            ),
        )
        for n in range(dz.shape[0])
    ]
    operands, text, more = _sum_terms(pairs)
    recomputed = float(np.dot(ws.a_prev[:, i], dz[:, j]))
    formula = f"dW_ij = Σ_n {prev}_ni dz_nj = {text}"
    l2 = session.config.l2
    if l2:
        operands.append(
            Operand(
                f"W[{i + 1}, {j + 1}]",
                float(ws.W[i, j]),
                Ref("W", ref.step, ref.layer, (i, j)),
            )
        )
        operands.append(Operand("l2", l2))
        recomputed += l2 * float(ws.W[i, j])
        formula += f" + l2 × W_ij ({l2:g} × {float(ws.W[i, j]):.6g})"
    return Explanation(
        ref,
        f"gradient dW[{i + 1}, {j + 1}] of layer {ref.layer + 1} at step {ref.step}",
        value,
        f"{formula} = {value:.6g}",
        operands,
        recomputed,
        more,
    )


def _db(session: Session, events: list[ev.Event], ref: Ref) -> Explanation:
    assert ref.layer is not None
    (j,) = ref.index
    db = _grad(events, ref.layer, "db")
    dz = _grad(events, ref.layer, "dz")
    value = _at(db, (j,))
    operands = [
        Operand(
            f"dz[{n + 1}, {j + 1}]",
            float(dz[n, j]),
            Ref("dz", ref.step, ref.layer, (n, j)),
        )
        for n in range(dz.shape[0])
    ]
    more = max(0, len(operands) - MAX_TERMS)
    text = " + ".join(f"{o.value:.6g}" for o in operands[:MAX_TERMS])
    if more:
        text += f" + … ({more} more terms)"
    return Explanation(
        ref,
        f"gradient db[{j + 1}] of layer {ref.layer + 1} at step {ref.step}",
        value,
        f"db_j = Σ_n dz_nj = {text} = {value:.6g}",
        operands[:MAX_TERMS],
        float(dz[:, j].sum()),
        more,
    )


def _dz(session: Session, events: list[ev.Event], ref: Ref) -> Explanation:
    assert ref.layer is not None
    n, j = ref.index
    dz = _grad(events, ref.layer, "dz")
    value = _at(dz, (n, j))
    last = len(session.spec.layers) - 1
    act = _one(events, ev.ActivationComputed, ref.layer)
    assert isinstance(act, ev.ActivationComputed)
    label = f"gradient dz[{n + 1}, {j + 1}] of layer {ref.layer + 1} at step {ref.step}"
    if ref.layer == last and _fused(session):
        loss = _one(events, ev.LossComputed)
        assert isinstance(loss, ev.LossComputed)
        scale = (
            loss.y.size
            if session.config.loss == "binary_cross_entropy"
            else loss.y.shape[0]
        )
        y_hat, y = float(loss.y_hat[n, j]), float(loss.y[n, j])
        return Explanation(
            ref,
            label,
            value,
            f"dz = (y_hat - y) / {scale} = ({y_hat:.6g} - {y:.6g}) / {scale} "
            f"= {value:.6g} "
            f"({act.activation} and {loss.loss_name} together)",
            [
                Operand(
                    f"y_hat[{n + 1}, {j + 1}]", y_hat, Ref("a", ref.step, last, (n, j))
                ),
                Operand(f"y[{n + 1}, {j + 1}]", y, Ref("y", ref.step, None, (n, j))),
            ],
            (y_hat - y) / scale,
        )
    # da here is the gradient reaching this layer's a (after any dropout mask).
    if ref.layer == last:
        da = _grad(events, None, "dy_hat")
        da_ref = None
    else:
        da = _grad(events, ref.layer + 1, "da_prev")
        da_ref = Ref("da", ref.step, ref.layer, (n, j))
    drop = next(
        (
            x
            for x in events
            if isinstance(x, ev.DropoutApplied) and x.layer == ref.layer
        ),
        None,
    )
    da_used = da if drop is None else da * drop.mask / drop.keep_prob
    g = get_activation(act.activation)
    recomputed = float(
        g.backward(act.z[n : n + 1], act.a[n : n + 1], da_used[n : n + 1])[0, j]
    )
    return Explanation(
        ref,
        label,
        value,
        f"dz = da × {act.activation}'(z) = {float(da_used[n, j]):.6g} × "
        f"{act.activation}'({float(act.z[n, j]):.6g}) = {value:.6g}"
        + ("" if drop is None else " (da after the dropout mask)"),
        [
            Operand(f"da[{n + 1}, {j + 1}]", float(da[n, j]), da_ref),
            Operand(
                f"z[{n + 1}, {j + 1}]",
                float(act.z[n, j]),
                Ref("z", ref.step, ref.layer, (n, j)),
            ),
        ],
        recomputed,
    )


def _da(session: Session, events: list[ev.Event], ref: Ref) -> Explanation:
    """The gradient reaching layer ``ref.layer``'s output: da_prev of the next layer."""
    assert ref.layer is not None
    n, j = ref.index
    nxt = ref.layer + 1
    da = _grad(events, nxt, "da_prev")
    dz = _grad(events, nxt, "dz")
    ws = _one(events, ev.WeightedSumComputed, nxt)
    assert isinstance(ws, ev.WeightedSumComputed)
    value = _at(da, (n, j))
    pairs = [
        (
            Operand(
                f"dz[{n + 1}, {k + 1}] of layer {nxt + 1}",
                float(dz[n, k]),
                Ref("dz", ref.step, nxt, (n, k)),
            ),
            Operand(
                f"W[{j + 1}, {k + 1}] of layer {nxt + 1}",
                float(ws.W[j, k]),
                Ref("W", ref.step, nxt, (j, k)),
            ),
        )
        for k in range(dz.shape[1])
    ]
    operands, text, more = _sum_terms(pairs)
    return Explanation(
        ref,
        f"gradient da[{n + 1}, {j + 1}] reaching layer {ref.layer + 1} "
        f"at step {ref.step}",
        value,
        f"da_nj = Σ_k dz_nk W_jk (layer {nxt + 1}) = {text} = {value:.6g}",
        operands,
        float(np.dot(dz[n], ws.W[j])),
        more,
    )


def _param(session: Session, events: list[ev.Event], ref: Ref) -> Explanation:
    """W or b as step ``ref.step`` used it: the update of the step before."""
    assert ref.layer is not None
    name = ref.kind
    entry = ", ".join(str(i + 1) for i in ref.index)
    label = f"{name}[{entry}] of layer {ref.layer + 1} used at step {ref.step}"
    if ref.step == 0:
        init = _one(events, ev.ParametersInitialized, ref.layer)
        assert isinstance(init, ev.ParametersInitialized)
        value = _at(getattr(init, name), ref.index)
        how = (
            "set by hand"
            if init.initializer == "given"
            else f"drawn by the {init.initializer} initializer"
        )
        parent = session.fork_of
        if parent is not None:
            step = session.meta.get("fork_step")
            how = f"taken from {parent.get('file')} at its step {step} (a fork)"
        return Explanation(
            ref,
            label,
            value,
            f"{name} = {value:.6g}: the initial value, {how} "
            f"(seed {session.config.seed}); a leaf.",
        )
    before_events = session.step_events(ref.step - 1)
    up = _one(before_events, ev.ParametersUpdated, ref.layer, name=name)
    assert isinstance(up, ev.ParametersUpdated)
    value = _at(up.after, ref.index)
    cfg = session.config
    optimizer = get_optimizer(up.optimizer, up.lr, **cfg.optimizer_settings())
    state = session.state_before(ref.step - 1).opt_state[ref.layer][name]
    again, _ = optimizer.update(up.before, up.grad, state, up.t)
    operands = [
        Operand(
            f"{name} before",
            _at(up.before, ref.index),
            Ref(name, ref.step - 1, ref.layer, ref.index),
        ),
        Operand(
            f"d{name}",
            _at(up.grad, ref.index),
            Ref(f"d{name}", ref.step - 1, ref.layer, ref.index),
        ),
        Operand("learning rate", up.lr),
    ]
    for key, arr in state.items():
        operands.append(Operand(f"{key} before this update", _at(arr, ref.index)))
    return Explanation(
        ref,
        label,
        value,
        f"{optimizer.formula} (step {ref.step - 1}'s update, t = {up.t}) gives "
        f"{name} = {value:.6g}",
        operands,
        _at(again, ref.index),
    )


_EXPLAIN = {
    "x": _x,
    "y": _y,
    "z": _z,
    "a": _a,
    "loss": _loss,
    "dz": _dz,
    "da": _da,
    "dW": _dW,
    "db": _db,
    "W": _param,
    "b": _param,
}
