"""Compare two runs: what differs in their settings, where their values part.

Runs are lined up by their position in the schedule (``start_step + step``),
so a fork lines up with its parent.  :func:`compare` reports the settings that
differ, the first step whose recorded summary differs and, within it, the
first event whose values differ, and how far each layer's weights have drifted
apart (relative distance) at keyframes over the common stretch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import events as ev
from engine.network import Params
from sessions.session import Session

__all__ = ["Comparison", "compare", "first_event_difference", "settings_difference"]

DRIFT_POINTS = 60
"""Steps (at most) at which the weight drift is measured."""


@dataclass
class Comparison:
    """What :func:`compare` found about runs ``a`` and ``b``."""

    settings: list[tuple[str, Any, Any]]
    """(setting, value in a, value in b) for every setting that differs."""
    offset: int
    """``b``'s step = ``a``'s step - offset for the same schedule position."""
    common: tuple[int, int]
    """The range of ``a``'s steps that both runs have, [start, stop)."""
    first_step: int | None
    """``a``'s first common step whose summary differs (None: none differs)."""
    first_event: str | None
    """The first event of that step whose values differ, in words."""
    drift_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    """``a``'s steps at which the drift was measured."""
    drift: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """(len(drift_steps), n_layers): |W_a - W_b| / |W_a| after each step."""


def settings_difference(a: Session, b: Session) -> list[tuple[str, Any, Any]]:
    """Return (setting, a's value, b's value) for every setting that differs."""
    out: list[tuple[str, Any, Any]] = []
    ca, cb = a.config.to_dict(), b.config.to_dict()
    for key in ca:
        if ca[key] != cb.get(key):
            out.append((key, ca[key], cb.get(key)))
    if a.spec.sizes != b.spec.sizes:
        out.append(
            (
                "network",
                "-".join(map(str, a.spec.sizes)),
                "-".join(map(str, b.spec.sizes)),
            )
        )
    else:
        for i, (la, lb) in enumerate(zip(a.spec.layers, b.spec.layers, strict=True)):
            for name in ("activation", "dropout", "initializer"):
                va, vb = getattr(la, name), getattr(lb, name)
                if va != vb:
                    out.append((f"layer {i + 1} {name}", va, vb))
    if a.meta.get("dataset_hash") != b.meta.get("dataset_hash"):
        out.append(
            ("dataset", a.meta["dataset"].get("name"), b.meta["dataset"].get("name"))
        )
    return out


def compare(a: Session, b: Session) -> Comparison:
    """Return how runs ``a`` and ``b`` differ (see :class:`Comparison`)."""
    offset = b.config.start_step - a.config.start_step
    start = max(0, offset)
    stop = min(a.n_steps, b.n_steps + offset)
    result = Comparison(
        settings=settings_difference(a, b),
        offset=offset,
        common=(start, max(start, stop)),
        first_step=None,
        first_event=None,
    )
    same_shape = a.spec.sizes == b.spec.sizes
    if stop <= start or not same_shape:
        return result
    sa, sb = a.series(), b.series()
    ia = np.searchsorted(sa.step, np.arange(start, stop))
    ib = np.searchsorted(sb.step, np.arange(start, stop) - offset)
    ok = (ia < len(sa.step)) & (ib < len(sb.step))
    ia, ib = ia[ok], ib[ok]
    rows_a = np.column_stack([sa.loss[ia], sa.grad_norms[ia], sa.update_ratios[ia]])
    rows_b = np.column_stack([sb.loss[ib], sb.grad_norms[ib], sb.update_ratios[ib]])
    differs = ~((rows_a == rows_b) | (np.isnan(rows_a) & np.isnan(rows_b))).all(axis=1)
    hit = np.flatnonzero(differs)
    if hit.size:
        step = int(sa.step[ia[hit[0]]])
        result.first_step = step
        result.first_event = first_event_difference(a, b, step, step - offset)
    result.drift_steps, result.drift = _drift(a, b, start, stop, offset)
    return result


def first_event_difference(a: Session, b: Session, step_a: int, step_b: int) -> str:
    """Return, in words, the first event of the two steps whose values differ."""
    ea = [e for e in a.step_events(step_a) if not _opening(e)]
    eb = [e for e in b.step_events(step_b) if not _opening(e)]
    for x, y in zip(ea, eb, strict=False):
        if type(x) is not type(y):
            return f"{x.kind} in one run, {y.kind} in the other (operation {x.seq})"
        where = _differing_field(x, y)
        if where is not None:
            layer = "" if x.layer is None else f" of layer {x.layer + 1}"
            return f"{x.kind}{layer}: {where} differs (step {step_a} of the first run)"
    if len(ea) != len(eb):
        return (
            f"step {step_a} has {len(ea)} events in one run and {len(eb)} in the other"
        )
    return "no event value differs (only the order of sums)"


def _opening(event: ev.Event) -> bool:
    return isinstance(event, ev.SessionStarted | ev.ParametersInitialized)


def _differing_field(x: ev.Event, y: ev.Event) -> str | None:
    for name in x.__dataclass_fields__:
        if name in ("seq", "step", "epoch"):
            continue
        va, vb = getattr(x, name), getattr(y, name)
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            if np.shape(va) != np.shape(vb) or not np.array_equal(
                va, vb, equal_nan=True
            ):
                return name
        elif isinstance(va, dict) and isinstance(vb, dict):
            for key in va.keys() | vb.keys():
                if not _same(va.get(key), vb.get(key)):
                    return f"{name}[{key}]"
        elif not _same(va, vb):
            return name
    return None


def _same(va: Any, vb: Any) -> bool:
    if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
        return np.shape(va) == np.shape(vb) and bool(
            np.array_equal(va, vb, equal_nan=True)
        )
    if isinstance(va, float) and isinstance(vb, float) and va != va and vb != vb:
        return True
    return bool(va == vb)


def _drift(
    a: Session, b: Session, start: int, stop: int, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return steps and the per-layer relative weight distance after each."""
    last = stop - 1
    if last < start:
        return np.zeros(0, int), np.zeros((0, len(a.spec.layers)))
    steps = np.unique(
        np.linspace(start, last, min(DRIFT_POINTS, last - start + 1)).astype(int)
    )
    rows = []
    for step in steps:
        pa: Params = a.params_after(int(step))
        pb: Params = b.params_after(int(step) - offset)
        row = []
        for la, lb in zip(pa, pb, strict=True):
            size = float(np.linalg.norm(la["W"]))
            gap = float(np.linalg.norm(la["W"] - lb["W"]))
            row.append(gap / size if size > 0 else gap)
        rows.append(row)
    return steps, np.array(rows)
