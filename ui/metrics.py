"""Compute the numbers tabs 6 and 7 show: metrics, unit health, gradient verdicts.

Pure NumPy functions with no Panel in sight, so each one is tested on small
hand-computed cases.  The thresholds of every verdict are module constants,
documented where they are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "bucket_summary",
    "DEAD_TOLERANCE",
    "EARLY_STEPS",
    "EXPLODING_ABSOLUTE",
    "EXPLODING_RELATIVE",
    "RECENT_STEPS",
    "SATURATED_MARGIN",
    "SATURATED_SHARE",
    "UPDATE_RATIO_GUIDE",
    "VANISHING_ABSOLUTE",
    "VANISHING_RELATIVE",
    "ClassMetrics",
    "GradientVerdict",
    "class_metrics",
    "classification_accuracy",
    "confusion_matrix",
    "dead_fraction",
    "decimate",
    "gradient_health",
    "predicted_classes",
    "regression_metrics",
    "sampled_steps",
    "saturated_fraction",
    "true_classes",
]

Array = NDArray[np.float64]

#: A ReLU unit counts as active on a sample when its activation exceeds this.
DEAD_TOLERANCE = 0.0
#: A sigmoid/tanh activation this close to an asymptote counts as saturated.
SATURATED_MARGIN = 0.02
#: A unit is saturated when at least this share of samples saturates it.
SATURATED_SHARE = 0.9
#: How many first steps give a layer's reference gradient norm (their median).
EARLY_STEPS = 10
#: How many steps up to the cursor give its current gradient norm (median).
RECENT_STEPS = 10
#: Current norm below this share of the early norm (or of the output layer's
#: norm at the same time) means vanishing.
VANISHING_RELATIVE = 1e-3
#: Current norm below this is vanishing whatever the reference.
VANISHING_ABSOLUTE = 1e-7
#: Current norm above this multiple of the early norm means exploding.
EXPLODING_RELATIVE = 1e2
#: Current norm above this (or not finite) is exploding whatever the reference.
EXPLODING_ABSOLUTE = 1e3
#: The usual rule of thumb for ``|update| / |W|`` per step.
UPDATE_RATIO_GUIDE = 1e-3


# -- classification ---------------------------------------------------------


def predicted_classes(y_hat: Array, task: str) -> NDArray[np.int64]:
    """Return the class index each output row predicts.

    Parameters
    ----------
    y_hat : ndarray of shape (n_samples, n_outputs)
        Network outputs: one probability column (binary) or one column per
        class (multiclass).
    task : {"binary", "multiclass"}

    Returns
    -------
    ndarray of int of shape (n_samples,)
        Binary: 1 where ``y_hat >= 0.5`` (the trainer's rule), else 0.
        Multiclass: the arg-max column.
    """
    if task == "binary":
        return (y_hat[:, 0] >= 0.5).astype(np.int64)
    if task == "multiclass":
        return y_hat.argmax(axis=1).astype(np.int64)
    msg = f"task must be 'binary' or 'multiclass'; got {task!r}."
    raise ValueError(msg)


def true_classes(y: Array, task: str) -> NDArray[np.int64]:
    """Return the class index of each target row (binary 0/1 or one-hot).

    Parameters
    ----------
    y : ndarray of shape (n_samples, n_outputs)
    task : {"binary", "multiclass"}
    """
    if task == "binary":
        return (y[:, 0] >= 0.5).astype(np.int64)
    if task == "multiclass":
        return y.argmax(axis=1).astype(np.int64)
    msg = f"task must be 'binary' or 'multiclass'; got {task!r}."
    raise ValueError(msg)


def classification_accuracy(y_hat: Array, y: Array, task: str) -> float:
    """Return the share of rows whose predicted class is the true class.

    The same definition as the trainer's recorded ``accuracy`` metric; NaN
    for no rows.

    Examples
    --------
    >>> y = np.array([[1.0], [0.0], [1.0]])
    >>> classification_accuracy(np.array([[0.9], [0.6], [0.5]]), y, "binary")
    0.6666666666666666
    """
    if y.shape[0] == 0:
        return math.nan
    return float((predicted_classes(y_hat, task) == true_classes(y, task)).mean())


def confusion_matrix(
    actual: NDArray[np.int64], predicted: NDArray[np.int64], n_classes: int
) -> NDArray[np.int64]:
    """Count every (true class, predicted class) pair.

    Parameters
    ----------
    actual, predicted : ndarray of int of shape (n_samples,)
        Class indices from 0 to ``n_classes - 1``.
    n_classes : int

    Returns
    -------
    ndarray of int of shape (n_classes, n_classes)
        Row ``i``, column ``j``: samples of class ``i`` predicted as ``j``.
        The entries sum to ``n_samples``.

    Examples
    --------
    >>> confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    actual = np.asarray(actual, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if actual.shape != predicted.shape:
        msg = (
            f"actual and predicted must have the same shape; got {actual.shape} "
            f"and {predicted.shape}."
        )
        raise ValueError(msg)
    for name, values in (("actual", actual), ("predicted", predicted)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            msg = f"{name} holds class indices outside 0..{n_classes - 1}."
            raise ValueError(msg)
    flat = np.bincount(actual * n_classes + predicted, minlength=n_classes**2)
    return flat.reshape(n_classes, n_classes)


@dataclass(frozen=True)
class ClassMetrics:
    """Per-class and macro-averaged precision, recall and F1 of one split.

    Attributes
    ----------
    precision, recall, f1 : ndarray of shape (n_classes,)
        Per class; 0.0 where the ratio divides by zero (see
        :func:`class_metrics`).
    support : ndarray of int of shape (n_classes,)
        True samples of each class.
    accuracy : float
        Share of correct predictions (NaN for no samples).
    macro_precision, macro_recall, macro_f1 : float
        Unweighted means over the classes.
    """

    precision: Array
    recall: Array
    f1: Array
    support: NDArray[np.int64]
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float


def class_metrics(matrix: NDArray[np.int64]) -> ClassMetrics:
    """Return accuracy, per-class and macro precision, recall and F1.

    Parameters
    ----------
    matrix : ndarray of int of shape (n_classes, n_classes)
        A confusion matrix (rows: true class, columns: predicted class).

    Returns
    -------
    ClassMetrics

    Notes
    -----
    For class ``c`` with ``tp`` true positives, ``fp`` false positives and
    ``fn`` false negatives: precision ``tp / (tp + fp)``, recall
    ``tp / (tp + fn)``, F1 ``2 tp / (2 tp + fp + fn)`` (the harmonic mean of
    the two).  A zero denominator gives 0.0 (as scikit-learn's
    ``zero_division=0``): a class never predicted has precision 0, a class
    absent from the data has recall 0.  Macro averages are plain means over
    all classes, so they lie in [0, 1].

    Examples
    --------
    >>> m = class_metrics(np.array([[2, 1], [0, 1]]))
    >>> m.precision.tolist(), m.recall.tolist()
    ([1.0, 0.5], [0.6666666666666666, 1.0])
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1)
    total = matrix.sum()
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support.astype(np.float64))
    f1 = _ratio(2 * tp, predicted + support)
    accuracy = float(tp.sum() / total) if total else math.nan
    return ClassMetrics(
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        accuracy=accuracy,
        macro_precision=float(precision.mean()),
        macro_recall=float(recall.mean()),
        macro_f1=float(f1.mean()),
    )


# -- regression ---------------------------------------------------------------


def regression_metrics(y_hat: Array, y: Array) -> dict[str, float]:
    """Return mean squared error, mean absolute error and R^2.

    Parameters
    ----------
    y_hat, y : ndarray of shape (n_samples, n_outputs)

    Returns
    -------
    dict
        ``mse`` and ``mae`` averaged over every entry; ``r2`` is
        ``1 - SS_res / SS_tot`` per output column, averaged over columns.  A
        column with zero variance gives R^2 1.0 when it is fitted exactly,
        else 0.0.  All NaN for no rows.

    Examples
    --------
    >>> y = np.array([[1.0], [2.0], [3.0]])
    >>> regression_metrics(np.array([[1.0], [2.0], [4.0]]), y)["mse"]
    0.3333333333333333
    """
    if y.shape[0] == 0:
        return {"mse": math.nan, "mae": math.nan, "r2": math.nan}
    # NOTE: a diverged network's outputs overflow here; inf is the answer.
    with np.errstate(all="ignore"):
        err = y_hat - y
        ss_res = (err**2).sum(axis=0)
        ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 0.0)
        r2 = np.where((ss_tot == 0) & (ss_res == 0), 1.0, r2)
        return {
            "mse": float((err**2).mean()),
            "mae": float(np.abs(err).mean()),
            "r2": float(r2.mean()),
        }


# -- units ------------------------------------------------------------------


def dead_fraction(a: Array) -> tuple[float, NDArray[np.bool_]]:
    """Return the share of ReLU units never active on any sample, and which.

    Parameters
    ----------
    a : ndarray of shape (n_samples, n_units)
        One layer's ReLU activations over a data set.

    Returns
    -------
    share : float
        Dead units over all units (NaN for no samples).
    dead : ndarray of bool of shape (n_units,)
        True for a unit whose activation is at most ``DEAD_TOLERANCE`` (0)
        on every sample: it passes no signal and gets no gradient, so it
        cannot learn again on this data.

    Examples
    --------
    >>> dead_fraction(np.array([[0.0, 1.0], [0.0, 0.0]]))[0]
    0.5
    """
    if a.shape[0] == 0 or a.shape[1] == 0:
        return math.nan, np.zeros(a.shape[1], dtype=bool)
    dead = ~(a > DEAD_TOLERANCE).any(axis=0)
    return float(dead.mean()), dead


def saturated_fraction(a: Array, activation: str) -> tuple[float, NDArray[np.bool_]]:
    """Return the share of sigmoid or tanh units saturated on most samples.

    Parameters
    ----------
    a : ndarray of shape (n_samples, n_units)
        One layer's activations over a data set.
    activation : {"sigmoid", "tanh"}

    Returns
    -------
    share : float
        Saturated units over all units (NaN for no samples).
    saturated : ndarray of bool of shape (n_units,)
        True for a unit within ``SATURATED_MARGIN`` (0.02) of an asymptote
        (0 or 1 for sigmoid, -1 or 1 for tanh) on at least
        ``SATURATED_SHARE`` (90 %) of the samples.  Its derivative there is
        nearly 0, so gradients through it nearly vanish.

    Examples
    --------
    >>> a = np.array([[0.999, 0.5], [0.001, 0.6]])
    >>> saturated_fraction(a, "sigmoid")[0]
    0.5
    """
    if activation == "sigmoid":
        near = np.minimum(a, 1.0 - a) < SATURATED_MARGIN
    elif activation == "tanh":
        near = np.abs(a) > 1.0 - SATURATED_MARGIN
    else:
        msg = f"activation must be 'sigmoid' or 'tanh'; got {activation!r}."
        raise ValueError(msg)
    if a.shape[0] == 0 or a.shape[1] == 0:
        return math.nan, np.zeros(a.shape[1], dtype=bool)
    saturated = near.mean(axis=0) >= SATURATED_SHARE
    return float(saturated.mean()), saturated


# -- gradient health ----------------------------------------------------------


@dataclass(frozen=True)
class GradientVerdict:
    """The health of one layer's gradients at one step.

    Attributes
    ----------
    verdict : {"vanishing", "exploding", "healthy", "unknown"}
    reason : str
        One plain sentence saying why.
    current : float
        Median norm over the recent steps.
    early : float
        Median norm over the first steps.
    """

    verdict: str
    reason: str
    current: float
    early: float


def gradient_health(
    norms: Array,
    step: int,
    *,
    early_steps: int = EARLY_STEPS,
    recent_steps: int = RECENT_STEPS,
) -> list[GradientVerdict]:
    """Judge each layer's gradient norms up to ``step``: vanishing, exploding, healthy.

    Parameters
    ----------
    norms : ndarray of shape (n_steps, n_layers)
        Norm of ``dW`` per step and layer (``Session.series().grad_norms``).
    step : int
        The cursor; only steps up to it are used.
    early_steps, recent_steps : int
        How many first steps give the reference norm and how many steps up
        to ``step`` give the current norm (medians, so one odd step does
        not flip the verdict).

    Returns
    -------
    list of GradientVerdict
        One per layer; ``unknown`` when there are no steps.

    Notes
    -----
    With ``current`` the median norm of the recent steps, ``early`` the
    median of the first steps and ``last`` the output layer's current norm:

    * exploding if ``current`` is not finite, above ``EXPLODING_ABSOLUTE``
      (1e3), or above ``EXPLODING_RELATIVE`` (100) times ``early``;
    * vanishing if ``current`` is below ``VANISHING_ABSOLUTE`` (1e-7), or
      below ``VANISHING_RELATIVE`` (1e-3) times ``early``, or (hidden layers)
      below 1e-3 times ``last``: the signal fades on its way back;
    * healthy otherwise.

    Gradients also shrink when the loss itself nears zero; the relative rule
    then says "vanishing" for a run that simply converged, which the reason
    text mentions.
    """
    norms = np.asarray(norms, dtype=np.float64)
    n_steps, n_layers = norms.shape
    if n_steps == 0 or step < 0:
        return [
            GradientVerdict("unknown", "No steps recorded yet.", math.nan, math.nan)
            for _ in range(n_layers)
        ]
    step = min(step, n_steps - 1)
    with np.errstate(all="ignore"):
        early = _median_rows(norms[: max(1, min(early_steps, step + 1))])
        current = _median_rows(norms[max(0, step - recent_steps + 1) : step + 1])
    last = current[-1]
    out = []
    for i in range(n_layers):
        out.append(_verdict(current[i], early[i], last, i < n_layers - 1))
    return out


def _verdict(
    current: float, early: float, last: float, hidden: bool
) -> GradientVerdict:
    """Apply the thresholds of :func:`gradient_health` to one layer."""
    if not math.isfinite(current):
        why = "The gradient is not a finite number: training has blown up."
        return GradientVerdict("exploding", why, current, early)
    if current > EXPLODING_ABSOLUTE:
        why = f"The gradient norm {current:.3g} is above {EXPLODING_ABSOLUTE:g}."
        return GradientVerdict("exploding", why, current, early)
    if early > 0 and current > EXPLODING_RELATIVE * early:
        why = (
            f"The gradient norm grew {current / early:.3g} times since the first steps."
        )
        return GradientVerdict("exploding", why, current, early)
    if current < VANISHING_ABSOLUTE:
        why = f"The gradient norm {current:.3g} is below {VANISHING_ABSOLUTE:g}."
        return GradientVerdict("vanishing", why, current, early)
    if early > 0 and current < VANISHING_RELATIVE * early:
        why = (
            f"The gradient norm fell to {current / early:.3g} of its first steps' "
            "size (also expected when the loss itself is nearly zero)."
        )
        return GradientVerdict("vanishing", why, current, early)
    if hidden and math.isfinite(last) and current < VANISHING_RELATIVE * last:
        why = (
            f"The gradient is {current / last:.3g} times the output layer's: it "
            "fades on its way back through the layers."
        )
        return GradientVerdict("vanishing", why, current, early)
    why = f"The gradient norm {current:.3g} is within the healthy range."
    return GradientVerdict("healthy", why, current, early)


def _median_rows(block: Array) -> Array:
    """Return the per-column median, treating NaN/inf as not finite (inf)."""
    block = np.where(np.isfinite(block), block, np.inf)
    return np.asarray(np.median(block, axis=0), dtype=np.float64)


# -- long series --------------------------------------------------------------


def decimate(
    x: NDArray[np.floating] | NDArray[np.integer],
    y: Array,
    max_points: int = 2000,
) -> tuple[Array, Array]:
    """Shorten a series for plotting, keeping each bucket's minimum and maximum.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Increasing positions (steps).
    y : ndarray of shape (n,) or (n, n_series)
        Values; columns are decimated with the same buckets.
    max_points : int
        At most this many points are returned (at least 2).

    Returns
    -------
    x, y : ndarray
        Unchanged when ``n <= max_points``.  Otherwise the series is cut into
        ``max_points // 2`` buckets of consecutive steps and each bucket gives
        two points: the positions of its first and last step, carrying the
        bucket's minimum and maximum (per column, ignoring NaN), so spikes stay
        visible.  Buckets whose values are all NaN stay NaN.

    Examples
    --------
    >>> x, y = decimate(np.arange(6), np.array([1.0, 5, 2, 2, 9, 0]), 4)
    >>> x.tolist(), y.tolist()
    ([0.0, 2.0, 3.0, 5.0], [1.0, 5.0, 0.0, 9.0])
    """
    if max_points < 2:
        msg = f"max_points must be at least 2; got {max_points!r}."
        raise ValueError(msg)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.shape[0]
    if n <= max_points:
        return x, y
    n_buckets = max_points // 2
    edges = np.linspace(0, n, n_buckets + 1).astype(np.int64)
    starts, ends = edges[:-1], edges[1:] - 1
    flat = y.reshape(n, -1)
    with np.errstate(all="ignore"):
        lo = np.fmin.reduceat(flat, starts, axis=0)
        hi = np.fmax.reduceat(flat, starts, axis=0)
    xs = np.empty(2 * n_buckets)
    xs[0::2], xs[1::2] = x[starts], x[ends]
    ys = np.empty((2 * n_buckets, flat.shape[1]))
    ys[0::2], ys[1::2] = lo, hi
    return xs, ys.reshape((2 * n_buckets, *y.shape[1:]))


def bucket_summary(
    x: NDArray[np.floating] | NDArray[np.integer],
    y: Array,
    max_points: int = 2000,
) -> tuple[Array, Array, Array, Array]:
    """Summarize a long series by buckets of consecutive steps: min, median, max.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Increasing positions (steps).
    y : ndarray of shape (n, n_series)
        Values, one column per series.
    max_points : int
        At most this many buckets.

    Returns
    -------
    x, lo, mid, hi : ndarray
        ``x`` of shape (n_buckets,) is each bucket's first position; the
        others, of shape (n_buckets, n_series), its minimum, median and maximum
        (ignoring NaN; all NaN stays NaN).  When ``n <= max_points`` every
        point is its own bucket, so the three are ``y`` itself.

    Examples
    --------
    >>> x, lo, mid, hi = bucket_summary(np.arange(6), np.c_[[1.0, 5, 2, 2, 9, 0]], 2)
    >>> x.tolist(), lo.ravel().tolist(), mid.ravel().tolist(), hi.ravel().tolist()
    ([0.0, 3.0], [1.0, 0.0], [2.0, 2.0], [5.0, 9.0])
    """
    if max_points < 1:
        msg = f"max_points must be at least 1; got {max_points!r}."
        raise ValueError(msg)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(x.shape[0], -1)
    n = x.shape[0]
    if n <= max_points:
        return x, y, y, y
    edges = np.linspace(0, n, max_points + 1).astype(np.int64)
    starts = edges[:-1]
    with np.errstate(all="ignore"):
        lo = np.fmin.reduceat(y, starts, axis=0)
        hi = np.fmax.reduceat(y, starts, axis=0)
    mid = np.empty_like(lo)
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        block = y[a:b]
        finite = ~np.isnan(block)
        for j in range(block.shape[1]):
            column = block[finite[:, j], j]
            mid[i, j] = np.median(column) if column.size else np.nan
    return x[starts], lo, mid, hi


def sampled_steps(n_steps: int, interval: int, max_samples: int = 40) -> list[int]:
    """Return up to ``max_samples`` evenly spread positions in a run.

    Parameters
    ----------
    n_steps : int
        Steps in the run; the positions returned go from 0 to ``n_steps``
        (position ``s`` means "the parameters before step ``s``", so
        ``n_steps`` is "after the last step").
    interval : int
        Keyframe interval: the parameters before a multiple of it are stored,
        so reading them needs no re-execution.
    max_samples : int
        At most this many positions (the last one, ``n_steps``, included).

    Returns
    -------
    list of int
        Every position when there are at most ``max_samples`` of them;
        otherwise multiples of ``interval`` spread evenly, then ``n_steps``.
        Increasing, without repeats, starting at 0.

    Examples
    --------
    >>> sampled_steps(4, 10)
    [0, 1, 2, 3, 4]
    >>> sampled_steps(1000, 10, 5)
    [0, 330, 660, 990, 1000]
    """
    if n_steps <= 0:
        return [0]
    if n_steps + 1 <= max_samples:
        return list(range(n_steps + 1))
    interval = max(int(interval), 1)
    keyframes = np.arange(0, n_steps, interval)
    if len(keyframes) > max_samples - 1:
        picks = np.linspace(0, len(keyframes) - 1, max_samples - 1).round()
        keyframes = keyframes[np.unique(picks.astype(np.int64))]
    return [int(k) for k in keyframes] + [int(n_steps)]


def _ratio(num: Array, den: Array) -> Array:
    """Return ``num / den`` with 0.0 where ``den`` is 0."""
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out
