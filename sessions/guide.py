"""Instructors' notes on a saved session, and guided replays built from them.

A guide is a list of stops, each at one step and operation of the run, with a
note and, optionally, a question: "what is this value?" for one entry of an
array the operation computed (a weighted sum, a gradient, ...).  Students play
the stops in order; a question is asked before its step is shown, and the
answer is checked against the recorded value.

The guide is kept in the session file itself, as the ``guide`` entry of its
``meta`` table (JSON), which users may edit like the title: the hash chain
leaves it out (``sessions.chain.EDITABLE_META``).  Every stop is checked
against the run when read and written, so a guide never points at an
operation or value the run does not have.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import events as ev
from sessions.codec import to_json
from sessions.errors import SessionError, SessionFormatError
from sessions.session import Session

__all__ = [
    "MAX_NOTE_CHARS",
    "MAX_STOPS",
    "Question",
    "Stop",
    "answer_of",
    "array_fields",
    "check_answer",
    "read_guide",
    "write_guide",
]

MAX_STOPS = 200
"""The most stops a guide may have."""
MAX_NOTE_CHARS = 4000
"""The longest note, in characters."""
TOLERANCE = 5e-4
"""An answer is right within this relative error (or absolute, near 0): the
app shows four significant digits, so a value read off a tab passes."""


@dataclass(frozen=True)
class Question:
    """Ask for one entry of an array field of the stop's operation."""

    field: str
    """The event's field, e.g. ``z`` of a weighted sum or ``value`` of a gradient."""
    index: tuple[int, ...]
    """The entry, counted from 0 (the app shows it counted from 1)."""


@dataclass(frozen=True)
class Stop:
    """One stop of a guide: where, what the instructor says, what is asked."""

    step: int
    op: int
    note: str
    question: Question | None = None


def read_guide(session: Session) -> list[Stop]:
    """Return the guide stored in ``session`` (empty if none).

    Raises
    ------
    SessionFormatError
        If the stored guide is not valid for this run.
    """
    text = session.meta.get("guide")
    if text is None:
        return []
    try:
        return _check(session, _parse(text))
    except SessionError as err:
        msg = f"{session.path.name} holds a guide that does not fit its run: {err}"
        raise SessionFormatError(msg) from err


def write_guide(path: str | Path, stops: Sequence[Stop]) -> None:
    """Check ``stops`` against the run in ``path`` and store them as its guide.

    Only the ``guide`` entry of the file's metadata changes.  Callers that
    serve many users check first that the user may change the file (see
    ``sessions.library.SessionFolder``).

    Raises
    ------
    SessionError
        If a stop does not fit the run or the file cannot be written.
    """
    path = Path(path)
    with Session(path) as session:
        checked = _check(session, list(stops))
    value = [_to_json(s) for s in checked]
    try:
        con = sqlite3.connect(path)
        try:
            with con:
                con.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('guide', ?)",
                    (to_json(value),),
                )
        finally:
            con.close()
    except sqlite3.DatabaseError as err:
        msg = f"Could not write the guide into {path.name} ({err}); is it writable?"
        raise SessionError(msg) from err


def answer_of(session: Session, stop: Stop) -> float:
    """Return the recorded value a stop's question asks for."""
    if stop.question is None:
        raise SessionError("This stop asks no question.")
    event = session.step_events(stop.step)[stop.op]
    value = np.asarray(getattr(event, stop.question.field))
    return float(value[stop.question.index])


def check_answer(session: Session, stop: Stop, answer: float) -> tuple[bool, float]:
    """Return whether ``answer`` is right, and the recorded value."""
    right = answer_of(session, stop)
    ok = math.isclose(answer, right, rel_tol=TOLERANCE, abs_tol=TOLERANCE * 1e-3)
    return ok, right


def array_fields(event: ev.Event) -> dict[str, tuple[int, ...]]:
    """Return the event's array fields a question may ask about, with shapes."""
    out = {}
    for name in event.__dataclass_fields__:
        value = getattr(event, name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
            out[name] = value.shape
    return out


def _parse(text: Any) -> list[Stop]:
    if not isinstance(text, list):
        raise SessionError("the guide is not a list of stops")
    stops = []
    for item in text[: MAX_STOPS + 1]:
        if not isinstance(item, dict):
            raise SessionError("a stop is not a table of step, op and note")
        q = item.get("question")
        question = None
        if q is not None:
            if not isinstance(q, dict) or not isinstance(q.get("index"), list):
                raise SessionError("a question lacks its field and index")
            question = Question(str(q.get("field")), tuple(q["index"]))
        step: Any = item.get("step")
        op: Any = item.get("op")
        note: Any = item.get("note")
        if not (_whole(step) and _whole(op) and isinstance(note, str)):
            raise SessionError("a stop needs a whole step and operation and a note")
        stops.append(Stop(step, op, note, question))
    return stops


def _to_json(stop: Stop) -> dict[str, Any]:
    out: dict[str, Any] = {"step": stop.step, "op": stop.op, "note": stop.note}
    if stop.question is not None:
        out["question"] = {
            "field": stop.question.field,
            "index": list(stop.question.index),
        }
    return out


def _check(session: Session, stops: list[Stop]) -> list[Stop]:
    if len(stops) > MAX_STOPS:
        raise SessionError(f"a guide holds at most {MAX_STOPS} stops")
    out = []
    for n, stop in enumerate(stops, start=1):
        where = f"stop {n}"
        if not _whole(stop.step) or not 0 <= stop.step < session.n_steps:
            raise SessionError(
                f"{where} is at step {stop.step!r}; the run has steps 0 to "
                f"{session.n_steps - 1}"
            )
        if not isinstance(stop.note, str) or len(stop.note) > MAX_NOTE_CHARS:
            raise SessionError(
                f"{where} needs a note of at most {MAX_NOTE_CHARS} characters"
            )
        events = session.step_events(stop.step)
        if not _whole(stop.op) or not 0 <= stop.op < len(events):
            raise SessionError(
                f"{where} is at operation {stop.op!r} of step {stop.step}, which "
                f"has operations 0 to {len(events) - 1}"
            )
        q = stop.question
        if q is not None:
            fields = array_fields(events[stop.op])
            if q.field not in fields:
                names = ", ".join(fields) or "none"
                raise SessionError(
                    f"{where} asks for {q.field!r}, which operation {stop.op} of "
                    f"step {stop.step} ({events[stop.op].kind}) does not compute; "
                    f"it has {names}"
                )
            shape = fields[q.field]
            if len(q.index) != len(shape) or not all(
                _whole(i) and 0 <= i < s for i, s in zip(q.index, shape, strict=False)
            ):
                raise SessionError(
                    f"{where} asks for entry {list(q.index)} of {q.field}, whose "
                    f"shape is {list(shape)}"
                )
        out.append(stop)
    return out


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
