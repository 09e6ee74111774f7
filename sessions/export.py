"""Export a session for other tools: metrics to CSV, arrays to .npy, a notebook.

Every exported file names the session (its file name, and its title inside)
and the step it came from.  Layers are counted from 1 here, as in the app:
layer 1 is the first hidden layer (the engine's layer 0).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine import events as ev
from sessions.errors import SessionError
from sessions.session import Session

__all__ = [
    "ExportError",
    "array_field",
    "array_fields",
    "array_file_name",
    "event_array",
    "find_event",
    "metrics_csv",
    "metrics_file_name",
    "metrics_frame",
    "notebook",
    "notebook_file_name",
    "npy_bytes",
    "session_stem",
    "write_array",
    "write_metrics_csv",
    "write_notebook",
]

logger = logging.getLogger(__name__)

_HEADER_FIELDS = ("seq", "step", "epoch", "layer")
# Characters kept in file names; anything else becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# CommonMark lets a backslash escape any ASCII punctuation.
_MARKDOWN_PUNCTUATION = re.compile(r"([!\"#$%'()*+,\-./:;=?@\[\\\]^_`{|}~])")


class ExportError(SessionError, ValueError):
    """Raised for an export that names a step, event, layer or field not recorded."""


# -- names ---------------------------------------------------------------------


def session_stem(session: Session) -> str:
    """Return the session's file name without ``.session``, safe in a file name."""
    stem = _UNSAFE.sub("_", session.path.stem).strip("._") or "session"
    return stem[:80]


def metrics_file_name(session: Session) -> str:
    """Return ``<session>_metrics_steps0-<last>.csv``."""
    last = len(session.series().step) - 1
    return f"{session_stem(session)}_metrics_steps0-{max(last, 0)}.csv"


def array_file_name(session: Session, event: ev.Event, field: str) -> str:
    """Return ``<session>_step<N>_<kind>[_layer<L>][_<name>]_<field>.npy``.

    The layer is counted from 1; ``name`` is the gradient's or parameter's
    name (``dW``, ``W``, ...) for the events that have one.
    """
    parts = [session_stem(session), f"step{event.step}", event.kind]
    if event.layer is not None:
        parts.append(f"layer{event.layer + 1}")
    name = getattr(event, "name", None)
    if isinstance(name, str):
        parts.append(name)
    parts.append(field)
    return _UNSAFE.sub("_", "_".join(parts)) + ".npy"


def notebook_file_name(session: Session, step: int) -> str:
    """Return ``<session>_step<N>.ipynb``."""
    return f"{session_stem(session)}_step{step}.ipynb"


# -- per-step metrics ------------------------------------------------------------


def metrics_frame(session: Session) -> pd.DataFrame:
    """Return one row per recorded step, with the per-epoch metrics at epoch ends.

    Columns: ``step`` (from 0), ``epoch`` (from 1), ``loss``, ``data_loss``,
    ``grad_norm_layer<L>`` and ``update_ratio_layer<L>`` for each layer L
    (from 1), then ``train_<metric>`` and ``test_<metric>`` (``loss``, and
    ``accuracy`` for classification) as recorded for each epoch, filled on
    the epoch's last step and NaN elsewhere.  Test metrics are measured after
    that step's update; training metrics follow the run's ``train_metrics``
    setting (the mean over the epoch's batches, or a pass after the update).
    A diverged last step is not included (it has no summary).
    """
    series = session.series()
    n_layers = series.grad_norms.shape[1]
    columns: dict[str, np.ndarray] = {
        "step": np.asarray(series.step, dtype=np.int64),
        "epoch": np.asarray(series.epoch, dtype=np.int64) + 1,
        "loss": np.asarray(series.loss),
        "data_loss": np.asarray(series.data_loss),
    }
    for layer in range(n_layers):
        columns[f"grad_norm_layer{layer + 1}"] = np.asarray(series.grad_norms[:, layer])
    for layer in range(n_layers):
        columns[f"update_ratio_layer{layer + 1}"] = np.asarray(
            series.update_ratios[:, layer]
        )
    frame = pd.DataFrame(columns)

    # Join the per-epoch metrics on the step that ended each epoch (row = step).
    epochs = session.epochs()
    ends = epochs.step < len(frame)
    for split, values in (("train", epochs.train), ("test", epochs.test)):
        for metric, column in sorted(values.items()):
            full = np.full(len(frame), np.nan)
            full[epochs.step[ends]] = column[ends]
            frame[f"{split}_{metric}"] = full
    return frame


def metrics_csv(session: Session) -> str:
    """Return the per-step metrics as CSV text, after a ``#`` line naming the session.

    Floats are written in full (``repr``), so the values read back equal
    the recorded ones; NaN is an empty field.  Read it back with
    ``pandas.read_csv(path, comment="#")``.
    """
    frame = metrics_frame(session)
    last = int(frame["step"].iloc[-1]) if len(frame) else 0
    head = (
        f"# glassnet per-step metrics of session {_one_line(session.title)!r} "
        f"(file {session.path.name}), steps 0 to {last}, status {session.status}; "
        "layers counted from 1; train_/test_ metrics on each epoch's last step "
        f"(train metrics: {session.config.train_metrics})\n"
    )
    out = io.StringIO()
    out.write(head)
    frame.to_csv(out, index=False, lineterminator="\n")
    return out.getvalue()


def write_metrics_csv(session: Session, out: str | Path) -> Path:
    """Write :func:`metrics_csv` to ``out`` (a folder: the default file name in it)."""
    path = _target(Path(out), metrics_file_name(session))
    _write(path, metrics_csv(session).encode("utf-8"))
    logger.info("Exported the metrics of %s to %s", session.path, path)
    return path


# -- recorded arrays -----------------------------------------------------------


def find_event(
    session: Session,
    step: int,
    kind: str,
    layer: int | None = None,
    name: str | None = None,
) -> ev.Event:
    """Return the one event of ``step`` with this kind, layer and name.

    Parameters
    ----------
    session : Session
        The open session.
    step : int
        The step, from 0.
    kind : str
        The event kind, e.g. ``parameters_updated`` (as ``glassnet events``
        prints it).
    layer : int or None
        The layer, counted from 1 (layer 1 = the first hidden layer); None
        for events about no single layer, or when the kind has one event.
    name : str or None
        The gradient's or parameter's name (``dW``, ``dz``, ``W``, ``b``, ...)
        for ``gradient_computed`` and ``parameters_updated``.

    Raises
    ------
    ExportError
        If no event or more than one fits; the message lists what the step has.
    """
    if kind not in ev.EVENT_TYPES:
        msg = (
            f"There is no event kind {kind!r}; kinds are: {', '.join(ev.EVENT_TYPES)}."
        )
        raise ExportError(msg)
    if isinstance(step, bool) or not 0 <= step < session.n_steps:
        msg = (
            f"Step {step} is not in {session.path.name}; it has steps 0 to "
            f"{session.last_step}."
        )
        raise ExportError(msg)
    if layer is not None and layer < 1:
        msg = (
            f"Layer {layer} does not exist: layers are counted from 1 here, as in "
            f"the app (layer 1 is the first hidden layer; this network has layers "
            f"1 to {len(session.spec.layers)})."
        )
        raise ExportError(msg)
    events = [e for e in session.step_events(step) if e.kind == kind]
    if not events:
        msg = (
            f"Step {step} has no {kind} event; it has: "
            f"{', '.join(sorted({e.kind for e in session.step_events(step)}))}."
        )
        raise ExportError(msg)
    picked = [
        e
        for e in events
        if (layer is None or e.layer == layer - 1)
        and (name is None or getattr(e, "name", None) == name)
    ]
    if len(picked) == 1:
        return picked[0]
    choices = "; ".join(_describe(e) for e in events)
    if not picked:
        wanted = ", ".join(
            part
            for part in (
                None if layer is None else f"layer {layer}",
                None if name is None else f"name {name}",
            )
            if part
        )
        msg = f"Step {step} has no {kind} event with {wanted}; it has: {choices}."
    else:
        msg = (
            f"Step {step} has {len(picked)} {kind} events; choose one by layer "
            f"(from 1) and name: {choices}."
        )
    raise ExportError(msg)


def array_fields(event: ev.Event) -> dict[str, np.ndarray]:
    """Return every field of ``event`` that holds numbers, as arrays, by name.

    Header fields (``seq``, ``step``, ``epoch``, ``layer``) are left out; a
    dict field gives one entry per key, named ``state.m``, ``state.v``, ...
    """
    out: dict[str, np.ndarray] = {}
    for f in dataclasses.fields(event):
        if f.name in _HEADER_FIELDS:
            continue
        value = getattr(event, f.name)
        if isinstance(value, dict):
            for key, item in value.items():
                array = _numbers(item)
                if array is not None:
                    out[f"{f.name}.{key}"] = array
            continue
        array = _numbers(value)
        if array is not None:
            out[f.name] = array
    return out


def array_field(event: ev.Event, field: str | None = None) -> str:
    """Return the name of the array :func:`event_array` reads for ``field``.

    ``field`` may be None when the event has exactly one array (a gradient's
    ``value``); dict fields are named ``state.m``, ``state.v``, ...

    Raises
    ------
    ExportError
        If the field does not exist or holds no numbers; the message lists
        the array fields of the event.
    """
    fields = array_fields(event)
    if field is None:
        if len(fields) == 1:
            return next(iter(fields))
        msg = (
            f"{_describe(event)} has several arrays; choose one with a field: "
            f"{', '.join(fields)}."
        )
        raise ExportError(msg)
    if field not in fields:
        what = "has no field" if not _has_field(event, field) else "holds no numbers in"
        msg = (
            f"{_describe(event)} {what} {field!r}; its array fields are: "
            f"{', '.join(fields) or 'none'}."
        )
        raise ExportError(msg)
    return field


def event_array(event: ev.Event, field: str | None = None) -> np.ndarray:
    """Return one recorded array of ``event``, e.g. ``z``, ``after`` or ``state.m``.

    Numbers and tuples of numbers (``grad_norms``) come back as arrays too.
    See :func:`array_field` for ``field`` and the errors.
    """
    return array_fields(event)[array_field(event, field)]


def npy_bytes(array: np.ndarray) -> bytes:
    """Return ``array`` as the bytes of a ``.npy`` file (no pickled objects)."""
    out = io.BytesIO()
    np.save(out, np.ascontiguousarray(array), allow_pickle=False)
    return out.getvalue()


def write_array(
    session: Session, out: str | Path, event: ev.Event, field: str | None = None
) -> Path:
    """Write one array of ``event`` to ``out`` as ``.npy``; return the path.

    ``out`` may be a folder: the file is then named by :func:`array_file_name`.
    """
    field = array_field(event, field)
    array = event_array(event, field)
    path = _target(Path(out), array_file_name(session, event, field))
    _write(path, npy_bytes(array))
    logger.info("Exported %s of %s to %s", field, _describe(event), path)
    return path


# -- notebook --------------------------------------------------------------------


def notebook(session: Session, step: int, session_file: str | None = None) -> dict:
    """Return a Jupyter notebook (nbformat 4, as a dict) on ``session`` at ``step``.

    It opens the session with glassnet and draws the loss per step, the
    train/test metrics after each epoch and the gradient norm of each layer
    with Bokeh, then shows the app's Training results tab inside the
    notebook.  ``session_file`` is the path the notebook opens (default:
    the file name, for a session kept beside the notebook).
    """
    if isinstance(step, bool) or not 0 <= step < session.n_steps:
        msg = (
            f"Step {step} is not in {session.path.name}; it has steps 0 to "
            f"{session.last_step}."
        )
        raise ExportError(msg)
    where = session_file or session.path.name
    title = _one_line(session.title) or session.path.name
    intro = (
        f"# glassnet session: {_markdown_text(title)}\n\n"
        f"File `{_markdown_code(_one_line(session.path.name))}`, exported at step "
        f"{step} (of 0 to {session.last_step}), status {session.status}.\n\n"
        "Run it with the Python that has glassnet installed (its `.venv`), with "
        "the session file beside this notebook (the app downloads it on tab 6) "
        "or `SESSION_FILE` below set to its path. "
        "The plots are Bokeh figures, as in the app; the last cell shows the "
        "app's *Training results* tab itself, live, inside JupyterLab."
    )
    cells = [
        _markdown(intro),
        _code(_SETUP.format(where=json.dumps(where), step=step)),
        _markdown("## Loss per step"),
        _code(_LOSS),
        _markdown("## Train and test metrics after each epoch"),
        _code(_EPOCHS),
        _markdown("## Gradient norm |dW| of each layer (log scale)"),
        _code(_GRADS),
        _markdown(
            "## The app's Training results tab, at the step\n\n"
            "Every tab of the app is a Panel component: give it an `AppState` "
            "and show it (`pn.extension()` must have run first)."
        ),
        _code(_TAB),
    ]
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
            "glassnet": {"session": session.path.name, "step": step},
        },
        "cells": [dict(cell, id=f"cell-{i}") for i, cell in enumerate(cells)],
    }


def write_notebook(
    session: Session, out: str | Path, step: int, session_file: str | None = None
) -> Path:
    """Write :func:`notebook` to ``out`` (a folder: the default name in it).

    Without ``session_file`` the notebook opens the session by its path
    relative to the notebook's folder.
    """
    path = _target(Path(out), notebook_file_name(session, step))
    if session_file is None:
        session_file = os.path.relpath(session.path.resolve(), path.parent.resolve())
    text = json.dumps(notebook(session, step, session_file), indent=1)
    _write(path, (text + "\n").encode("utf-8"))
    logger.info("Exported a notebook on %s to %s", session.path, path)
    return path


_SETUP = """\
from pathlib import Path

import numpy as np
import panel as pn
from bokeh.models import Span
from bokeh.plotting import figure

from sessions import Session

pn.extension()

SESSION_FILE = Path({where})
STEP = {step}

session = Session(SESSION_FILE)
series = session.series()  # one entry per step
epochs = session.epochs()  # one entry per epoch
print(session.title, "-", session.n_steps, "steps, status", session.status)"""

_LOSS = """\
loss_fig = figure(
    title="Loss per step", x_axis_label="step", y_axis_label="loss",
    height=280, sizing_mode="stretch_width",
    tools="pan,wheel_zoom,box_zoom,reset,save",
)
loss_fig.line(series.step, series.loss, line_width=1.5, color="#4c78a8")
loss_fig.add_layout(Span(location=STEP, dimension="height", line_color="#d62728",
                         line_dash="dashed", line_width=2))
pn.pane.Bokeh(loss_fig)"""

_EPOCHS = """\
epoch_figs = []
for metric in sorted(set(epochs.train) | set(epochs.test)):
    fig = figure(
        title=f"{metric} after each epoch", y_axis_label=metric,
        x_axis_label="updates applied (= the step that uses them)",
        height=280, sizing_mode="stretch_width",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    for split, values, color in (("train", epochs.train, "#1f77b4"),
                                 ("test", epochs.test, "#ff7f0e")):
        if metric in values:
            fig.line(epochs.step + 1, values[metric], color=color,
                     legend_label=f"{split} data")
            fig.scatter(epochs.step + 1, values[metric], color=color, size=3)
    fig.add_layout(Span(location=STEP, dimension="height", line_color="#d62728",
                        line_dash="dashed", line_width=2))
    epoch_figs.append(fig)
pn.Row(*epoch_figs, sizing_mode="stretch_width")"""

_GRADS = """\
from bokeh.palettes import Category10

grad_fig = figure(
    title="|dW| per step (log scale)", x_axis_label="step", y_axis_label="|dW|",
    y_axis_type="log", height=300, sizing_mode="stretch_width",
    tools="pan,wheel_zoom,box_zoom,reset,save",
)
for layer in range(series.grad_norms.shape[1]):
    norms = np.where(series.grad_norms[:, layer] > 0, series.grad_norms[:, layer],
                     np.nan)
    grad_fig.line(series.step, norms, color=Category10[10][layer % 10],
                  legend_label=f"layer {layer + 1}")
grad_fig.add_layout(Span(location=STEP, dimension="height", line_color="#d62728",
                         line_dash="dashed", line_width=2))
pn.pane.Bokeh(grad_fig)"""

_TAB = """\
from ui.state import AppState
from ui.tabs import ResultsTab

state = AppState()
if not state.open(SESSION_FILE):
    raise RuntimeError(state.message)
state.go_to(STEP)
state.tab = ResultsTab.index  # a tab fills itself while it is the one shown
results = ResultsTab(state=state)
results.refresh()
results"""


# -- helpers ---------------------------------------------------------------------


def _numbers(value: Any) -> np.ndarray | None:
    """Return ``value`` as an array if it is one or holds only numbers, else None."""
    if isinstance(value, np.ndarray):
        return value if value.dtype.kind in "biuf" else None
    if isinstance(value, bool | int | float):
        return np.asarray(value)
    if isinstance(value, tuple) and value:
        if all(isinstance(v, int | float) for v in value):
            return np.asarray(value)
    return None


def _has_field(event: ev.Event, field: str) -> bool:
    head, _, key = field.partition(".")
    if head in _HEADER_FIELDS or not hasattr(event, head):
        return False
    value = getattr(event, head)
    return not key or (isinstance(value, dict) and key in value)


def _describe(event: ev.Event) -> str:
    """Return e.g. ``gradient_computed dW of layer 2`` (layers from 1)."""
    name = getattr(event, "name", None)
    text = event.kind + (f" {name}" if isinstance(name, str) else "")
    if event.layer is not None:
        text += f" of layer {event.layer + 1}"
    return text


def _target(out: Path, default_name: str) -> Path:
    """Return ``out``, or ``out / default_name`` when ``out`` is a folder."""
    if out.is_dir():
        return out / default_name
    if not out.parent.is_dir():
        msg = f"Cannot write {out}: the folder {out.parent} does not exist."
        raise ExportError(msg)
    return out


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as err:
        msg = f"Cannot write {path} ({err.strerror or err})."
        raise ExportError(msg) from err


def _one_line(text: str) -> str:
    """Return ``text`` on one line, without control characters."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _markdown_text(text: str) -> str:
    """Return user text that Markdown shows as written (no markup, no HTML)."""
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _markdown_code(text: str) -> str:
    """Return text safe inside a single-backtick code span."""
    return text.replace("`", "'")


def _markdown(source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def _code(source: str) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": source,
    }
