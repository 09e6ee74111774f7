"""Find the moments of a run worth stopping at, from what its session recorded.

A :class:`Bookmark` marks one step: the first non-finite value, a loss spike,
the first dead unit of a layer, vanishing or exploding gradients, saturated
units, a plateau, the best test result.  The loss and gradient figures come
from the step summaries (one read of the whole run); dead and saturated units
need the activations, so the training set is run through the network as it
stood at a few dozen steps of the run, and the first step is then narrowed
down step by step.  Every threshold is a named constant below, so a reader can
see exactly what "spike" or "dead" means here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine import events as ev
from engine.network import Params, forward
from sessions.session import Session

__all__ = ["Bookmark", "find_bookmarks"]

SPIKE_WINDOW = 20
"""A loss spike is measured against the median loss of this many steps before."""
SPIKE_FACTOR = 3.0
"""A step whose loss exceeds the recent median this many times is a spike."""
MAX_SPIKES = 3
"""At most this many spikes are marked (the largest ones)."""
VANISHING_RATIO = 1e-4
"""A layer's gradients vanish when their norm is below this fraction of the
output layer's gradient norm at the same step."""
EXPLODING_FACTOR = 1e3
"""Gradients explode when a layer's norm exceeds this many times its median
over the first steps of the run."""
EARLY_STEPS = 10
"""Steps whose median gradient norm is the reference for exploding gradients."""
PLATEAU_CHANGE = 0.01
"""The loss is on a plateau while its moving mean stays within this fraction
of itself ..."""
PLATEAU_MIN_STEPS = 50
"""... for at least this many steps (or 5 % of the run, if that is longer) ..."""
PLATEAU_DROP = 0.1
"""... and later falls by more than this fraction (else it is the end)."""
SATURATION = {"sigmoid": 5.0, "tanh": 3.0}
"""|z| beyond which a unit's derivative is under about 1 % of its largest
(sigmoid'(5) = 0.0066 against 0.25; 1 - tanh(3)^2 = 0.0099 against 1)."""
SATURATED_SHARE = 0.95
"""A unit is saturated when this share of the training samples saturate it."""
PROBES = 40
"""Steps at which dead and saturated units are looked for, spread over the run."""


@dataclass(frozen=True)
class Bookmark:
    """One step worth a stop, with what happened there in plain words."""

    kind: str
    """``nonfinite``, ``loss_spike``, ``dead_unit``, ``vanishing_gradients``,
    ``exploding_gradients``, ``saturated_units``, ``plateau`` or ``best_test``."""
    step: int
    layer: int | None
    """The layer concerned (0-based), or None."""
    title: str
    detail: str


def find_bookmarks(session: Session) -> list[Bookmark]:
    """Return the bookmarks of ``session``'s recorded steps, ordered by step.

    Results are remembered for the last few files (by path, size, change
    time and steps), so that a class opening one session finds them once.
    """
    try:
        info = session.path.stat()
        key: tuple[object, ...] | None = (
            str(session.path.resolve()),
            info.st_size,
            info.st_mtime_ns,
            session.n_steps,
            session.status,
        )
    except OSError:
        key = None
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return list(_CACHE[key])
    marks = _find(session)
    if key is not None:
        _CACHE[key] = tuple(marks)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return marks


_CACHE: OrderedDict[tuple[object, ...], tuple[Bookmark, ...]] = OrderedDict()
_CACHE_SIZE = 32


def _find(session: Session) -> list[Bookmark]:
    marks: list[Bookmark] = []
    marks += _nonfinite(session)
    if session.n_steps:
        series = session.series()
        marks += _spikes(series.step, series.loss)
        marks += _gradients(series.step, series.grad_norms)
        marks += _plateau(series.step, series.loss)
        marks += _best_test(session)
        marks += _units(session)
    return sorted(marks, key=lambda m: (m.step, m.layer or 0, m.kind))


def _nonfinite(session: Session) -> list[Bookmark]:
    end = session.end
    if session.status != "diverged" or end is None:
        return []
    diverged = [
        e for e in session.step_events(end.step) if isinstance(e, ev.TrainingDiverged)
    ]
    if not diverged:
        return []
    d = diverged[0]
    return [Bookmark("nonfinite", d.step, d.layer, "First non-finite value", d.message)]


def _spikes(steps: np.ndarray, loss: np.ndarray) -> list[Bookmark]:
    n = loss.shape[0]
    if n <= SPIKE_WINDOW:
        return []
    windows = np.lib.stride_tricks.sliding_window_view(loss[:-1], SPIKE_WINDOW)
    recent = np.median(windows, axis=1)  # recent[i]: the steps before i + WINDOW
    later = loss[SPIKE_WINDOW:]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(recent > 0, later / recent, 0.0)
    candidates = np.flatnonzero(ratio > SPIKE_FACTOR)
    out: list[Bookmark] = []
    taken: list[int] = []
    for i in candidates[np.argsort(-ratio[candidates], kind="stable")]:
        if len(out) == MAX_SPIKES:
            break
        if any(abs(int(i) - t) < SPIKE_WINDOW for t in taken):
            continue  # one mark per burst
        taken.append(int(i))
        j = int(i) + SPIKE_WINDOW
        out.append(
            Bookmark(
                "loss_spike",
                int(steps[j]),
                None,
                "Loss spike",
                f"The loss jumped to {loss[j]:.4g}, {ratio[i]:.1f} times the median "
                f"{recent[i]:.4g} of the {SPIKE_WINDOW} steps before. A step too "
                "large for the curvature there (learning rate), or an unusual "
                "batch, throws the weights off; watch whether it recovers.",
            )
        )
    return out


def _gradients(steps: np.ndarray, norms: np.ndarray) -> list[Bookmark]:
    out = []
    n_layers = norms.shape[1]
    last = norms[:, -1]
    for layer in range(n_layers - 1):
        with np.errstate(divide="ignore", invalid="ignore"):
            small = (last > 0) & (norms[:, layer] < VANISHING_RATIO * last)
        hit = np.flatnonzero(small)
        if hit.size:
            i = int(hit[0])
            out.append(
                Bookmark(
                    "vanishing_gradients",
                    int(steps[i]),
                    layer,
                    f"Vanishing gradients in layer {layer + 1}",
                    f"Layer {layer + 1}'s weight gradient has norm "
                    f"{norms[i, layer]:.3g}, under {VANISHING_RATIO:g} of the "
                    "output layer's "
                    f"{last[i]:.3g}: its weights barely move. Saturated sigmoid or "
                    "tanh units multiply the gradient by almost 0 on its way back; "
                    "ReLU or a smaller initialization keeps it alive.",
                )
            )
    early = np.median(norms[:EARLY_STEPS], axis=0)
    for layer in range(n_layers):
        if not early[layer] > 0:
            continue
        hit = np.flatnonzero(norms[:, layer] > EXPLODING_FACTOR * early[layer])
        if hit.size:
            i = int(hit[0])
            out.append(
                Bookmark(
                    "exploding_gradients",
                    int(steps[i]),
                    layer,
                    f"Exploding gradients in layer {layer + 1}",
                    f"Layer {layer + 1}'s weight gradient has norm "
                    f"{norms[i, layer]:.3g}, over {EXPLODING_FACTOR:g} times its "
                    "early median "
                    f"{early[layer]:.3g}. Updates that large overshoot; a smaller "
                    "learning rate, or clipping the gradient, keeps training stable.",
                )
            )
    return out


def _plateau(steps: np.ndarray, loss: np.ndarray) -> list[Bookmark]:
    n = loss.shape[0]
    length = max(PLATEAU_MIN_STEPS, n // 20)
    smooth_k = max(1, length // 5)
    if n < 2 * length + smooth_k:
        return []
    # A moving mean, so that the noise of mini-batches is not taken for progress.
    smooth = np.convolve(loss, np.ones(smooth_k) / smooth_k, mode="valid")
    top = _rolling_max(smooth, length)
    bottom = -_rolling_max(-smooth, length)
    level = np.maximum(np.abs(top), np.abs(bottom))
    flat = top - bottom <= PLATEAU_CHANGE * level
    # ... and the loss falls well below the plateau later (else it is the end).
    later = np.minimum.accumulate(smooth[::-1])[::-1]
    ends = np.arange(top.shape[0]) + length
    drops = np.zeros_like(flat)
    inside = ends < smooth.shape[0]
    drops[inside] = later[ends[inside]] < (1.0 - PLATEAU_DROP) * level[inside]
    found = np.flatnonzero(flat & drops)
    if not found.size:
        return []
    i = int(found[0])
    return [
        Bookmark(
            "plateau",
            int(steps[i]),
            None,
            "Plateau",
            f"For {length} steps from here the loss stays near {smooth[i]:.4g} "
            f"(its moving mean over {smooth_k} steps moves less than "
            f"{PLATEAU_CHANGE:.0%}), and only later falls by more than "
            f"{PLATEAU_DROP:.0%}: the weights crossed a flat region (a saddle, or "
            "saturated units) before finding a way down.",
        )
    ]


def _rolling_max(x: np.ndarray, width: int) -> np.ndarray:
    """Return the maximum of every ``width`` consecutive values of ``x``.

    Linear time whatever the width (van Herk / Gil-Werman): the running
    maximum from the start and from the end of each block of ``width``
    values; a window spans at most two blocks.
    """
    n = x.shape[0]
    blocks = -(-n // width)
    padded = np.full(blocks * width, -np.inf)
    padded[:n] = x
    grid = padded.reshape(blocks, width)
    ahead = np.maximum.accumulate(grid, axis=1).ravel()
    behind = np.maximum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].ravel()
    starts = np.arange(n - width + 1)
    return np.maximum(behind[starts], ahead[starts + width - 1])


def _best_test(session: Session) -> list[Bookmark]:
    epochs = session.epochs()
    if not epochs.epoch.size:
        return []
    if "accuracy" in epochs.test:
        values, best, what = epochs.test["accuracy"], np.nanargmax, "accuracy"
    elif "loss" in epochs.test:
        values, best, what = epochs.test["loss"], np.nanargmin, "loss"
    else:
        return []
    if not np.isfinite(values).any():
        return []
    i = int(best(values))
    return [
        Bookmark(
            "best_test",
            int(epochs.step[i]),
            None,
            f"Best test {what}",
            f"After epoch {int(epochs.epoch[i]) + 1} the test {what} is "
            f"{values[i]:.4g}, the best of the run. Training longer than this "
            "does not help the test set (if it gets worse later, the network "
            "starts to overfit).",
        )
    ]


def _units(session: Session) -> list[Bookmark]:
    """Return the first step with a dead unit, and with saturated units, per layer."""
    acts = [layer.activation for layer in session.spec.layers]
    checks: list[tuple[str, int, Callable[[np.ndarray], np.ndarray]]] = []
    for i, name in enumerate(acts[:-1]):  # hidden layers
        if name == "relu":
            checks.append(("dead_unit", i, _dead))
        elif name in SATURATION:
            checks.append(("saturated_units", i, _saturated(SATURATION[name])))
    if not checks:
        return []
    X = session.dataset.X_train
    activations = session.spec.activations()
    last = session.n_steps - 1
    grid = sorted({int(s) for s in np.linspace(0, last, min(PROBES, last + 1))})

    def units(
        step: int, layer: int, test: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        params: Params = session.params_after(step)
        tr = forward(params, X, activations)
        return np.flatnonzero(test(tr.z[layer]))

    out = []
    for kind, layer, test in checks:
        first = next((s for s in grid if units(s, layer, test).size), None)
        if first is None:
            continue
        # The grid step before ``first`` had none: narrow down to the first step.
        low = max((s for s in grid if s < first), default=-1)
        high = first
        while high - low > 1:
            mid = (low + high) // 2
            if units(mid, layer, test).size:
                high = mid
            else:
                low = mid
        found = units(high, layer, test)
        out.append(_unit_mark(kind, high, layer, found, acts[layer]))
    return out


def _dead(z: np.ndarray) -> np.ndarray:
    """Return, per unit, whether z <= 0 for every sample (rows of ``z``)."""
    return np.asarray((z <= 0).all(axis=0))


def _saturated(edge: float) -> Callable[[np.ndarray], np.ndarray]:
    """Return the test: is |z| beyond ``edge`` for most samples, per unit."""

    def test(z: np.ndarray) -> np.ndarray:
        return np.asarray((np.abs(z) > edge).mean(axis=0) >= SATURATED_SHARE)

    return test


def _unit_mark(
    kind: str, step: int, layer: int, found: np.ndarray, act: str
) -> Bookmark:
    names = ", ".join(str(int(u) + 1) for u in found[:8])
    more = f" and {found.size - 8} more" if found.size > 8 else ""
    if kind == "dead_unit":
        return Bookmark(
            kind,
            step,
            layer,
            f"Dead unit in layer {layer + 1}",
            f"After this step unit {names}{more} of layer {layer + 1} (ReLU) has "
            "z <= 0 for every training sample: it outputs 0 and gets gradient 0, "
            "so nothing can revive it. A large update pushed its bias or weights "
            "too far negative; a smaller learning rate or leaky ReLU avoids it.",
        )
    edge = SATURATION[act]
    return Bookmark(
        kind,
        step,
        layer,
        f"Saturated units in layer {layer + 1}",
        f"After this step unit {names}{more} of layer {layer + 1} ({act}) has "
        f"|z| > {edge:g} for at least {SATURATED_SHARE:.0%} of the training "
        "samples: its output is stuck near its limit and its derivative is "
        f"nearly 0, so it learns slowly. Standardized inputs and a smaller "
        "initialization or learning rate keep units in their sensitive range.",
    )
