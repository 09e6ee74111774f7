"""Check back-propagated gradients against central finite differences."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine._types import Array
from engine.activations import Activation, get_activation
from engine.errors import ConfigError
from engine.losses import Loss, get_loss
from engine.network import NetworkSpec, Params, backward, forward

__all__ = ["GradCheckReport", "gradient_check", "relative_difference"]

DEFAULT_STEP = 1e-7
DEFAULT_THRESHOLD = 1e-7


@dataclass(frozen=True)
class GradCheckReport:
    """Hold the outcome of :func:`gradient_check`.

    Attributes
    ----------
    difference : float
        ``||g_a - g_n|| / (||g_a|| + ||g_n||)`` over every weight and bias,
        where ``g_a`` is the back-propagated and ``g_n`` the numerical gradient.
    groups : dict of str to float
        The same difference for each parameter group, named ``W1``, ``b1``,
        ``W2``, ... (layers counted from 1), in that order.
    passed : bool
        True when ``difference`` is below ``threshold``.
    worst_group : str or None
        The group with the largest difference when the check failed (where to
        look for the bug); None when it passed.
    threshold : float
        The pass mark used.
    step : float
        The finite-difference step ``h`` used.
    analytic : dict of str to ndarray
        Back-propagated ``dW`` / ``db`` per group, each shaped like its parameter.
    numeric : dict of str to ndarray
        Central differences ``(L(theta + h) - L(theta - h)) / (2 h)`` per group.
    """

    difference: float
    groups: dict[str, float]
    passed: bool
    worst_group: str | None
    threshold: float
    step: float
    analytic: dict[str, Array]
    numeric: dict[str, Array]

    def summary(self) -> str:
        """Return a few lines of text: the verdict, then one line per group."""
        verdict = "passed" if self.passed else f"FAILED (look at {self.worst_group})"
        lines = [
            f"gradient check {verdict}: difference {self.difference:.3g} "
            f"(pass mark {self.threshold:.0e})"
        ]
        for name, diff in self.groups.items():
            mark = "ok" if diff < self.threshold else "differs"
            lines.append(f"  {name:<4} {diff:.3g}  {mark}")
        return "\n".join(lines)


def relative_difference(g_a: Array, g_n: Array) -> float:
    """Return ``||g_a - g_n|| / (||g_a|| + ||g_n||)``, 0 when both are 0.

    Parameters
    ----------
    g_a, g_n : ndarray
        Two gradients of the same shape (any shape; they are flattened).

    Examples
    --------
    >>> round(relative_difference(np.array([1.0, 2.0]), np.array([2.0, 4.0])), 3)
    0.333
    """
    num = float(np.linalg.norm(np.ravel(g_a - g_n)))
    den = float(np.linalg.norm(np.ravel(g_a)) + np.linalg.norm(np.ravel(g_n)))
    return 0.0 if den == 0.0 else num / den


def gradient_check(
    spec: NetworkSpec | Sequence[str | Activation],
    params: Params,
    X: Array,
    y: Array,
    loss: str | Loss,
    *,
    step: float = DEFAULT_STEP,
    l2: float = 0.0,
    fused: bool | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> GradCheckReport:
    """Compare ``backward``'s ``dW`` and ``db`` with central finite differences.

    Parameters
    ----------
    spec : NetworkSpec or sequence of str or Activation
        The network (only its activations are read), or one activation per
        layer (registry names or objects).
    params : list of dict
        ``{"W": (n_in, n_out), "b": (n_out,)}`` per layer; never changed.
    X : ndarray of shape (n_samples, n_features)
        A small batch: the check runs two forward passes per parameter.
    y : ndarray of shape (n_samples, n_outputs)
    loss : str or Loss
        Registry name (``"mse"``, ``"bce"``, ...) or a loss object.
    step : float
        Finite-difference step ``h``.
    l2 : float
        L2 strength; the loss then includes ``l2 / 2 * sum W^2``.
    fused : bool or None
        Use the fused output rule ``dz = (y_hat - y) / n``; None decides as the
        trainer does (sigmoid + binary or softmax + categorical cross-entropy).
    threshold : float
        The check passes when the overall difference is below this.

    Returns
    -------
    GradCheckReport

    Raises
    ------
    ConfigError
        If the activations, parameters and data do not fit together.

    Notes
    -----
    For every weight and bias ``theta_i`` the numerical gradient is
    ``(L(theta_i + h) - L(theta_i - h)) / (2 h)``, with ``L`` the mean loss
    (plus the L2 penalty) computed exactly as the trainer computes it: from the
    logits when ``fused``.  Its error is about ``h^2`` from the formula plus
    ``1e-16 * L / h`` from rounding, so about 1e-9 for ``h = 1e-7``; a correct
    backward pass gives a difference well below 1e-7, a wrong one about 1e-1.
    Dropout is not applied: the check runs the evaluation pass.

    Examples
    --------
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> y = np.array([[1.0], [0.0]])
    >>> params = [{"W": np.array([[0.3], [-0.2]]), "b": np.array([0.1])}]
    >>> gradient_check(["sigmoid"], params, X, y, "bce").passed
    True
    """
    activations = _activations(spec)
    loss_fn = get_loss(loss) if isinstance(loss, str) else loss
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    _check_shapes(activations, params, X, y)
    if not (math.isfinite(step) and step > 0.0):
        msg = f"step must be a small positive number such as 1e-7; got {step!r}."
        raise ConfigError(msg)
    if fused is None:
        fused = loss_fn.fused_with == activations[-1].name

    # Back-propagated gradients.
    tr = forward(params, X, activations)
    backward(tr, params, y, activations, loss_fn, l2=l2, fused=fused)
    analytic: dict[str, Array] = {}
    for layer, name, value in tr.grads:
        if name in ("dW", "db"):
            assert layer is not None
            analytic[f"{name[1:]}{layer + 1}"] = value

    # Central differences, one parameter entry at a time.
    def total_loss(ps: Params) -> float:
        return _total_loss(ps, X, y, activations, loss_fn, l2, fused)

    numeric = {
        f"{key}{i + 1}": _central_differences(total_loss, params, i, key, step)
        for i in range(len(params))
        for key in ("W", "b")
    }

    # Relative differences, overall and per group.
    names = list(numeric)
    groups = {n: relative_difference(analytic[n], numeric[n]) for n in names}
    difference = relative_difference(
        np.concatenate([analytic[n].ravel() for n in names]),
        np.concatenate([numeric[n].ravel() for n in names]),
    )
    passed = difference < threshold
    worst = None if passed else max(names, key=lambda n: groups[n])
    return GradCheckReport(
        difference=difference,
        groups=groups,
        passed=passed,
        worst_group=worst,
        threshold=threshold,
        step=step,
        analytic={n: analytic[n] for n in names},
        numeric=numeric,
    )


def _total_loss(
    params: Params,
    X: Array,
    y: Array,
    activations: list[Activation],
    loss: Loss,
    l2: float,
    fused: bool,
) -> float:
    """Return the mean loss plus the L2 penalty, computed as the trainer does."""
    out = forward(params, X, activations)
    if fused:
        per_sample = loss.forward_from_logits(out.z[-1], y)
    else:
        per_sample = loss.forward(out.y_hat, y)
    penalty = 0.5 * l2 * sum(float((p["W"] ** 2).sum()) for p in params)
    return float(per_sample.mean()) + penalty


def _central_differences(
    total_loss: Callable[[Params], float],
    params: Params,
    layer: int,
    key: str,
    h: float,
) -> Array:
    """Return the numerical gradient of ``total_loss`` for ``params[layer][key]``."""
    shifted = [dict(p) for p in params]
    theta = params[layer][key].astype(np.float64, copy=True)
    shifted[layer][key] = theta
    grad = np.empty_like(theta)
    for idx in np.ndindex(theta.shape):
        original = theta[idx]
        theta[idx] = original + h
        loss_plus = total_loss(shifted)
        theta[idx] = original - h
        loss_minus = total_loss(shifted)
        theta[idx] = original
        grad[idx] = (loss_plus - loss_minus) / (2.0 * h)
    return grad


def _activations(spec: NetworkSpec | Sequence[str | Activation]) -> list[Activation]:
    """Return one activation object per layer from a spec or a list of names."""
    if isinstance(spec, NetworkSpec):
        return spec.activations()
    if isinstance(spec, str):
        msg = (
            f"Give one activation per layer as a list, e.g. [{spec!r}], or the "
            "NetworkSpec; got a single string."
        )
        raise ConfigError(msg)
    return [a if isinstance(a, Activation) else get_activation(a) for a in spec]


def _check_shapes(
    activations: list[Activation], params: Params, X: Array, y: Array
) -> None:
    """Raise ConfigError unless the parameters chain from ``X`` to ``y``."""
    if len(params) != len(activations):
        msg = (
            f"params has {len(params)} layers but there are {len(activations)} "
            "activations; give one activation per layer."
        )
        raise ConfigError(msg)
    if X.ndim != 2 or y.ndim != 2 or X.shape[0] != y.shape[0]:
        msg = (
            f"X and y must be 2-D with one row per sample; got shapes {X.shape} "
            f"and {y.shape}."
        )
        raise ConfigError(msg)
    width = X.shape[1]
    for i, p in enumerate(params):
        W, b = p["W"], p["b"]
        if W.ndim != 2 or W.shape[0] != width or b.shape != (W.shape[1],):
            msg = (
                f"Layer {i} gets {width} inputs, but its W has shape {W.shape} "
                f"and its b {b.shape}; they must be ({width}, n_out) and (n_out,)."
            )
            raise ConfigError(msg)
        width = W.shape[1]
    if y.shape[1] != width:
        msg = f"The network gives {width} outputs but y has {y.shape[1]} columns."
        raise ConfigError(msg)
