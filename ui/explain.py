"""Write formulas out with the real numbers: one neuron's sum and activation, losses.

Every function is pure: it takes recorded arrays and returns an
:class:`Expansion` whose ``text`` is what the app shows and whose ``value`` is
the recorded number the text ends with.  The terms are kept at full precision
(``terms``) so a caller (or a test) can check that they reproduce the value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.activations import get_activation
from engine.losses import clip_eps, get_loss

__all__ = [
    "DIGITS",
    "Expansion",
    "activation",
    "batch_loss",
    "dropout",
    "fmt",
    "sample_loss",
    "weighted_sum",
]

DIGITS = 4
"""Significant digits of the operands in an expansion."""
VALUE_DIGITS = 6
"""Significant digits of the result an expansion ends with."""
MAX_TERMS = 20
"""Terms of a long sum shown before the middle ones are elided."""

LOSS_FORMULAS = {
    "mse": "L = 1/k sum_k (y_hat_k - y_k)^2",
    "binary_cross_entropy": (
        "L = -1/k sum_k [y_k log(y_hat_k) + (1 - y_k) log(1 - y_hat_k)]"
    ),
    "categorical_cross_entropy": "L = -sum_k y_k log(y_hat_k)",
}
"""How each loss of one sample is written (k outputs)."""
FUSED_FORMULAS = {
    "binary_cross_entropy": "L = 1/k sum_k [log(1 + e^z_k) - y_k z_k]",
    "categorical_cross_entropy": ("L = log(sum_j e^z_j) sum_k y_k - sum_k y_k z_k"),
}
"""The numerically stable form, from the output logits z, used when fused."""
ACTIVATION_FORMULAS = {
    "identity": "a = z",
    "sigmoid": "a = 1 / (1 + e^-z)",
    "tanh": "a = tanh(z) = (e^z - e^-z) / (e^z + e^-z)",
    "relu": "a = max(0, z)",
    "leaky_relu": "a = z if z > 0 else alpha z",
    "softmax": "a_k = e^z_k / sum_j e^z_j",
}
"""How each activation of one unit is written."""


@dataclass(frozen=True)
class Expansion:
    """A formula written out with the numbers it was computed from.

    Attributes
    ----------
    formula : str
        The formula in symbols, e.g. ``"z = sum_i a_prev_i W_ij + b_j"``.
    text : str
        The formula with the numbers, ending in ``= value``.
    value : float
        The recorded result (what the text ends with).
    terms : tuple of float
        The operands at full precision, in the order written (meaning depends
        on the expansion: products for a weighted sum, per-sample losses for a
        batch loss, ...).
    notes : tuple of str
        Remarks shown under the expansion (stable forms, dropped units).
    """

    formula: str
    text: str
    value: float
    terms: tuple[float, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return "\n".join((self.formula, self.text, *self.notes))


def fmt(x: float, digits: int = DIGITS) -> str:
    """Return ``x`` with ``digits`` significant digits (``inf``, ``nan`` as is).

    >>> fmt(0.253412), fmt(-1.2), fmt(3.0), fmt(1234567.0)
    ('0.2534', '-1.2', '3', '1.235e+06')
    """
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0.0:
        return "0"
    return f"{x:.{digits}g}"


def weighted_sum(
    a_prev: Sequence[float] | np.ndarray,
    w: Sequence[float] | np.ndarray,
    b: float,
    z: float,
    *,
    unit: int = 0,
) -> Expansion:
    """Expand one unit's weighted sum ``z_j = sum_i a_prev_i W_ij + b_j``.

    Parameters
    ----------
    a_prev : array of shape (n_in,)
        The sample's input to the layer.
    w : array of shape (n_in,)
        Column ``j`` of ``W``: the unit's weights.
    b : float
        The unit's bias.
    z : float
        The recorded weighted sum (shown as the result).
    unit : int
        Index ``j`` of the unit, used in the formula.

    Returns
    -------
    Expansion
        ``terms`` are the products ``a_prev_i W_ij`` followed by ``b``; their
        sum reproduces ``z`` up to rounding (the engine sums with a matrix
        product, whose order of additions may differ in the last bits).
    """
    x = np.asarray(a_prev, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    with np.errstate(all="ignore"):  # a diverged run holds huge or inf values
        products = x * w
        total = float(np.dot(x, w) + b)
        scale = float(np.abs(products).sum() + abs(b))
    parts = [f"{_operand(xi)} × {_operand(wi)}" for xi, wi in zip(x, w, strict=True)]
    parts.append(_operand(b))
    text = f"z_{unit} = " + _join_sum(parts) + f" = {fmt(z, VALUE_DIGITS)}"
    notes: tuple[str, ...] = ()
    if math.isfinite(total) and not abs(total - float(z)) <= 1e-9 * max(scale, 1.0):
        notes = (
            f"These numbers add up to {fmt(total, VALUE_DIGITS)}, not the recorded "
            f"{fmt(z, VALUE_DIGITS)}: the recorded values do not agree.",
        )
    return Expansion(
        formula=f"z_{unit} = sum_i a_prev_i × W_i{unit} + b_{unit}",
        text=text,
        value=float(z),
        terms=(*(float(p) for p in products), float(b)),
        notes=notes,
    )


def activation(
    name: str,
    z: Sequence[float] | np.ndarray,
    a: Sequence[float] | np.ndarray,
    unit: int,
    *,
    label: int | None = None,
) -> Expansion:
    """Expand ``a = g(z)`` for one unit of one sample.

    Parameters
    ----------
    name : str
        Registry name of the activation (``"linear"`` is ``identity``).
    z, a : array of shape (n_out,)
        The sample's whole row of weighted sums and activations (softmax needs
        every ``z`` of the layer).
    unit : int
        Index of the unit whose activation is written out.
    label : int or None
        The unit's number in the text (``a_<label>``); None shows ``unit``.
        The app counts units from 1 on screen, so it passes ``unit + 1``.

    Returns
    -------
    Expansion
        ``value`` is the recorded ``a[unit]``; for softmax ``terms`` are the
        ``e^z_j`` of the row.
    """
    act = get_activation(name)
    key = act.name
    zr = np.asarray(z, dtype=np.float64)
    n = unit if label is None else label
    zk = float(zr[unit])
    ak = float(np.asarray(a, dtype=np.float64)[unit])
    result = fmt(ak, VALUE_DIGITS)
    terms: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()
    if key == "identity":
        text = f"a_{n} = z_{n} = {result}"
    elif key == "sigmoid":
        with np.errstate(over="ignore"):
            e = math.exp(-zk) if zk > -700 else math.inf
        text = f"a_{n} = 1 / (1 + e^-({fmt(zk)})) = 1 / (1 + {fmt(e)}) = {result}"
    elif key == "tanh":
        text = f"a_{n} = tanh({fmt(zk)}) = {result}"
        if abs(zk) < 350:
            ep, em = math.exp(zk), math.exp(-zk)
            text = (
                f"a_{n} = tanh({fmt(zk)}) = ({fmt(ep)} - {fmt(em)}) / "
                f"({fmt(ep)} + {fmt(em)}) = {result}"
            )
    elif key == "relu":
        text = f"a_{n} = max(0, {fmt(zk)}) = {result}"
    elif key == "leaky_relu":
        alpha = getattr(act, "alpha", 0.01)
        if zk > 0:
            text = f"a_{n} = z_{n} = {fmt(zk)} (z > 0) = {result}"
        else:
            text = (
                f"a_{n} = alpha × z_{n} = {fmt(alpha)} × {_operand(zk)} "
                f"(z <= 0) = {result}"
            )
    elif key == "softmax":
        text, terms, notes = _softmax_text(zr, unit, result, n)
    else:  # pragma: no cover - every registered activation is handled above
        msg = f"No expansion is written for the activation {name!r}."
        raise NotImplementedError(msg)
    formula = ACTIVATION_FORMULAS[key].replace("a =", f"a_{n} =")
    formula = formula.replace("(z)", f"(z_{n})")
    return Expansion(formula=formula, text=text, value=ak, terms=terms, notes=notes)


def dropout(a_before: float, kept: bool, keep_prob: float, a: float) -> Expansion:
    """Expand inverted dropout for one unit: ``a = a_before × mask / keep_prob``."""
    mask = 1 if kept else 0
    text = (
        f"a = {_operand(a_before)} × {mask} / {fmt(keep_prob)} = {fmt(a, VALUE_DIGITS)}"
    )
    note = (
        f"kept (scaled by 1/{fmt(keep_prob)} so the expected value is unchanged)"
        if kept
        else "dropped for this step: the unit outputs 0"
    )
    return Expansion(
        formula="a = a_before × mask / keep_prob",
        text=text,
        value=float(a),
        terms=(float(a_before), float(mask), float(keep_prob)),
        notes=(note,),
    )


def sample_loss(
    loss_name: str,
    y_hat: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    value: float,
    *,
    z: Sequence[float] | np.ndarray | None = None,
) -> Expansion:
    """Expand the loss of one sample with its prediction and target.

    Parameters
    ----------
    loss_name : str
        Registry name (or alias) of the loss.
    y_hat, y : array of shape (n_outputs,)
        The sample's prediction and target.
    value : float
        The recorded per-sample loss (shown as the result).
    z : array of shape (n_outputs,) or None
        The output logits when the loss was computed in the fused, stable
        form (sigmoid + binary or softmax + categorical cross-entropy); the
        expansion then shows that form too.

    Returns
    -------
    Expansion
        ``terms`` are the per-output contributions whose sum (mean for mse
        and binary cross-entropy) is the loss.
    """
    loss = get_loss(loss_name)
    yh = np.asarray(y_hat, dtype=np.float64)
    yt = np.asarray(y, dtype=np.float64)
    k = yh.size
    result = fmt(value, VALUE_DIGITS)
    notes: list[str] = []
    with np.errstate(all="ignore"):  # a diverged run holds huge or inf values
        if loss.name == "mse":
            terms = (yh - yt) ** 2
            parts = [
                f"({fmt(p)} - {_operand(t)})^2" for p, t in zip(yh, yt, strict=True)
            ]
            text = f"L = 1/{k} × [{_join_sum(parts)}] = {result}"
        elif loss.name == "binary_cross_entropy":
            eps = clip_eps(yh.dtype)
            p = np.clip(yh, eps, 1.0 - eps)
            terms = -(yt * np.log(p) + (1.0 - yt) * np.log1p(-p))
            parts = [
                f"[{fmt(t)} log({fmt(q)}) + (1 - {fmt(t)}) log(1 - {fmt(q)})]"
                for q, t in zip(p, yt, strict=True)
            ]
            text = f"L = -1/{k} × ({_join_sum(parts)}) = {result}"
        else:
            p = np.clip(yh, clip_eps(yh.dtype), 1.0)
            terms = -(yt * np.log(p))
            parts = [f"{fmt(t)} log({fmt(q)})" for q, t in zip(p, yt, strict=True)]
            text = f"L = -({_join_sum(parts)}) = {result}"
    if z is not None and loss.name in FUSED_FORMULAS:
        zr = np.asarray(z, dtype=np.float64)
        notes.append(
            "Computed from the output logits z in the stable form "
            f"{FUSED_FORMULAS[loss.name]}, which never takes log(0):"
        )
        notes.append(_fused_text(loss.name, zr, yt, result))
    return Expansion(
        formula=LOSS_FORMULAS[loss.name],
        text=text,
        value=float(value),
        terms=tuple(float(t) for t in terms),
        notes=tuple(notes),
    )


def batch_loss(
    per_sample: Sequence[float] | np.ndarray,
    data_loss: float,
    loss: float,
    *,
    l2: float = 0.0,
    l2_penalty: float = 0.0,
    sum_sq_weights: float | None = None,
) -> Expansion:
    """Expand the step's loss: the batch mean plus the L2 penalty.

    Parameters
    ----------
    per_sample : array of shape (batch_size,)
        Each sample's recorded loss.
    data_loss : float
        Their recorded mean.
    loss : float
        The recorded total, ``data_loss + l2_penalty``.
    l2 : float
        The L2 coefficient of the run (0: no penalty).
    l2_penalty : float
        The recorded penalty ``l2 / 2 × sum W^2``.
    sum_sq_weights : float or None
        Sum of every squared weight the step used, written into the penalty.
    """
    values = np.asarray(per_sample, dtype=np.float64)
    n = values.size
    parts = [fmt(v) for v in values]
    text = f"data loss = 1/{n} × ({_join_sum(parts)}) = {fmt(data_loss, VALUE_DIGITS)}"
    lines = [text]
    formula = "data loss = 1/n sum_i L_i"
    if l2 > 0:
        formula += ";  loss = data loss + l2/2 × sum W^2"
        sq = "sum W^2" if sum_sq_weights is None else fmt(sum_sq_weights)
        lines.append(
            f"L2 penalty = {fmt(l2)}/2 × {sq} = {fmt(l2_penalty, VALUE_DIGITS)}"
        )
        lines.append(
            f"loss = {fmt(data_loss, VALUE_DIGITS)} + "
            f"{fmt(l2_penalty, VALUE_DIGITS)} = {fmt(loss, VALUE_DIGITS)}"
        )
    return Expansion(
        formula=formula,
        text="\n".join(lines),
        value=float(loss),
        terms=tuple(float(v) for v in values),
    )


def _operand(x: float) -> str:
    """Return a number as an operand: negative ones in parentheses."""
    s = fmt(x)
    return f"({s})" if s.startswith("-") else s


def _join_sum(parts: list[str]) -> str:
    """Join terms with ``+``, eliding the middle of a long sum."""
    if len(parts) > MAX_TERMS:
        head, tail = parts[: MAX_TERMS - 2], parts[-2:]
        hidden = len(parts) - len(head) - len(tail)
        more = "1 more term" if hidden == 1 else f"{hidden} more terms"
        parts = [*head, f"... ({more})", *tail]
    return " + ".join(parts)


def _softmax_text(
    z: np.ndarray, unit: int, result: str, label: int | None = None
) -> tuple[str, tuple[float, ...], tuple[str, ...]]:
    """Write softmax of one unit with every e^z_j of the row."""
    notes: tuple[str, ...] = ()
    shift = 0.0
    if float(np.max(z)) > 50.0:
        # NOTE: the engine subtracts the row maximum before exp; show it that way
        # when e^z itself would be unreadable (or overflow).
        shift = float(np.max(z))
        notes = (f"Written with z - max(z) = z - {fmt(shift)}, as computed.",)
    e = np.exp(z - shift)
    zs = [fmt(v - shift) for v in z]
    top = f"e^{zs[unit]}"
    bottom = " + ".join(f"e^{s}" for s in zs)
    text = (
        f"a_{unit if label is None else label} = {top} / ({bottom}) = {fmt(e[unit])} / "
        f"({' + '.join(fmt(v) for v in e)}) = {fmt(e[unit])} / {fmt(e.sum())} "
        f"= {result}"
    )
    return text, tuple(float(v) for v in e), notes


def _fused_text(name: str, z: np.ndarray, y: np.ndarray, result: str) -> str:
    """Write the stable loss from logits with the numbers."""
    k = z.size
    if name == "binary_cross_entropy":
        parts = [
            f"[log(1 + e^{_operand(zk)}) - {fmt(yk)} × {_operand(zk)}]"
            for zk, yk in zip(z, y, strict=True)
        ]
        return f"L = 1/{k} × ({_join_sum(parts)}) = {result}"
    top = float(np.max(z))
    lse = float(np.log(np.exp(z - top).sum()) + top)
    ysum = float(y.sum())
    dots = [f"{fmt(yk)} × {_operand(zk)}" for zk, yk in zip(z, y, strict=True)]
    return (
        f"L = {fmt(lse)} × {fmt(ysum)} - ({_join_sum(dots)}) = {result}"
        f"   (log sum_j e^z_j = {fmt(lse)})"
    )
