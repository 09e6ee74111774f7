"""Read a session's row tables and check every row before anything trusts it.

A session file may come from anyone, so each row is checked for its types and
for how it fits the rows around it (steps numbered without gaps, events that
follow on, keyframes where the interval puts them) as it is first read.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import events as ev
from engine.config import TrainingConfig
from engine.network import NetworkSpec
from sessions.codec import from_json
from sessions.errors import SessionFormatError
from sessions.state import decode_event

__all__ = ["MAX_PARAMS", "Plan", "StepIndex", "check_meta"]

MAX_PARAMS = 10_000_000
"""The most weights and biases a session may declare (glassnet nets are small)."""

_STATUSES = ("ok", "diverged")


@dataclass(frozen=True)
class Plan:
    """The schedule a session's metadata declares, checked for consistency."""

    keyframe_interval: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    n_train: int
    n_test: int


def check_meta(
    meta: dict[str, Any], spec: NetworkSpec, config: TrainingConfig, path: Path
) -> Plan:
    """Return the run's plan after checking the metadata agrees with itself.

    Raises
    ------
    SessionFormatError
        If a number is missing, of the wrong type or out of range, the network
        is larger than :data:`MAX_PARAMS`, or the data does not fit it.
    """
    where = f"{path} has metadata that"
    if spec.n_params > MAX_PARAMS:
        msg = (
            f"{path} declares a network with {spec.n_params} parameters; glassnet "
            f"opens networks of at most {MAX_PARAMS}."
        )
        raise SessionFormatError(msg)
    data = meta.get("dataset")
    if not isinstance(data, dict):
        raise SessionFormatError(f"{path} has unreadable metadata: no dataset.")
    n_train = _whole(data.get("n_train"), "dataset.n_train", where, low=1)
    n_test = _whole(data.get("n_test"), "dataset.n_test", where, low=0)
    if _whole(data.get("n_features"), "dataset.n_features", where, 1) != spec.n_in:
        raise SessionFormatError(
            f"{where}: the data does not fit the network's inputs."
        )
    n_out = _whole(data.get("n_outputs"), "dataset.n_outputs", where, 1)
    if n_out != spec.layers[-1].n_out:
        raise SessionFormatError(
            f"{where}: the data does not fit the network's outputs."
        )
    plan = Plan(
        keyframe_interval=_whole(
            meta.get("keyframe_interval"), "keyframe_interval", where, 1
        ),
        batch_size=_whole(meta.get("batch_size"), "batch_size", where, 1),
        steps_per_epoch=_whole(
            meta.get("steps_per_epoch"), "steps_per_epoch", where, 1
        ),
        total_steps=_whole(meta.get("total_steps"), "total_steps", where, 1),
        n_train=n_train,
        n_test=n_test,
    )
    batch = n_train if config.batch_size is None else config.batch_size
    if (
        plan.batch_size != batch
        or plan.steps_per_epoch != math.ceil(n_train / batch)
        or plan.total_steps != plan.steps_per_epoch * config.epochs
    ):
        msg = f"{where} is unreadable: batch size, steps per epoch and total disagree."
        raise SessionFormatError(msg)
    return plan


@dataclass
class StepIndex:
    """Where each step's events sit, read row by row and checked as it grows.

    ``seq_first[s]`` and ``n_events[s]`` place step ``s``; ``keyframes`` maps
    each keyframe step to its ``seq``; ``epochs`` maps an epoch to its row.
    """

    path: Path
    plan: Plan
    n_layers: int
    seq_first: list[int] = field(default_factory=list)
    n_events: list[int] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    keyframes: dict[int, int] = field(default_factory=dict)
    epochs: dict[int, tuple[int, int, dict[str, float], dict[str, float]]] = field(
        default_factory=dict
    )
    end: ev.SessionEnded | None = None
    divergence: ev.TrainingDiverged | None = None

    @property
    def n_steps(self) -> int:
        """Return the number of steps read so far."""
        return len(self.seq_first)

    @property
    def n_events_total(self) -> int:
        """Return the number of events recorded (the next ``seq``)."""
        if self.end is not None:
            return self.end.seq + 1
        if not self.seq_first:
            return 0
        return self.seq_first[-1] + self.n_events[-1]

    def update(self, con: sqlite3.Connection) -> None:
        """Read the rows added since the last call, checking each one.

        The tables are read in one transaction, so a file still being written
        is seen as one consistent moment of the recording.
        """
        if self.end is not None:
            return
        con.execute("BEGIN")
        try:
            self._read_steps(con)
            self._read_keyframes(con)
            self._read_epochs(con)
            self._read_events(con)
        finally:
            con.execute("COMMIT")

    # -- steps -------------------------------------------------------------

    def _read_steps(self, con: sqlite3.Connection) -> None:
        rows = con.execute(
            "SELECT step, epoch, seq_first, n_events, status, typeof(summary), "
            "length(summary), typeof(recorded_at) FROM steps WHERE step >= ? "
            "ORDER BY step",
            (self.n_steps,),
        ).fetchall()
        width = 8 * (2 + 2 * self.n_layers)
        spe, total = self.plan.steps_per_epoch, self.plan.total_steps
        firsts, counts, oks = self.seq_first, self.n_events, self.ok
        # Running values instead of properties and per-row messages: a file of
        # 100,000 steps is checked row by row on every open.
        next_step = len(firsts)
        next_first = self.n_events_total
        last_ok = oks[-1] if oks else True
        for step, epoch, seq_first, n_events, status, kind, size, when in rows:
            if step != next_step or type(step) is not int:
                where = f"{self.path}: the row of step {next_step}"
                msg = f"{where} is missing (the next stored step is {step!r})."
                raise SessionFormatError(msg)
            if (
                type(epoch) is not int
                or epoch != step // spe
                or type(seq_first) is not int
                or seq_first != next_first
                or type(n_events) is not int
                or n_events < 1
                or status not in _STATUSES
                or not last_ok
                or kind != "blob"
                or size != width
                or when not in ("real", "integer")
                or step >= total
            ):
                where = f"{self.path}: the row of step {next_step}"
                msg = f"{where} does not fit the rows before it: the file is damaged."
                raise SessionFormatError(msg)
            firsts.append(seq_first)
            counts.append(n_events)
            last_ok = status == "ok"
            oks.append(last_ok)
            next_step += 1
            next_first = seq_first + n_events

    # -- keyframes -------------------------------------------------------

    def _read_keyframes(self, con: sqlite3.Connection) -> None:
        done = max(self.keyframes, default=-1)
        rows = con.execute(
            "SELECT step, seq, typeof(state) FROM keyframes WHERE step > ? "
            "ORDER BY step",
            (done,),
        ).fetchall()
        k = self.plan.keyframe_interval
        for step, seq, kind in rows:
            where = f"{self.path}: the keyframe of step {step!r}"
            expected = done + k if done >= 0 else 0
            if type(step) is not int or step != expected:
                msg = (
                    f"{where} is not where the keyframe interval {k} puts one "
                    f"(expected step {expected}): the file is damaged."
                )
                raise SessionFormatError(msg)
            opening = 1 + self.n_layers
            if step < self.n_steps:
                want = opening if step == 0 else self.seq_first[step]
            else:
                want = self.n_events_total if step else opening
            if type(seq) is not int or seq != want or kind != "blob":
                msg = f"{where} has an event number that does not fit: it is damaged."
                raise SessionFormatError(msg)
            self.keyframes[step] = seq
            done = step

    # -- epochs ----------------------------------------------------------

    def _read_epochs(self, con: sqlite3.Connection) -> None:
        done = max(self.epochs, default=-1)
        rows = con.execute(
            "SELECT epoch, step, seq, train, test FROM epochs WHERE epoch > ? "
            "ORDER BY epoch",
            (done,),
        ).fetchall()
        spe = self.plan.steps_per_epoch
        for epoch, step, seq, train, test in rows:
            where = f"{self.path}: the metrics of epoch {epoch!r}"
            if (
                type(epoch) is not int
                or epoch != done + 1
                or type(step) is not int
                or step != (epoch + 1) * spe - 1
                or type(seq) is not int
                or seq < 0
            ):
                raise SessionFormatError(f"{where} do not fit the steps: damaged.")
            if step < self.n_steps:
                last = self.seq_first[step] + self.n_events[step] - 1
                if seq != last:
                    raise SessionFormatError(f"{where} have a wrong event number.")
            self.epochs[epoch] = (
                step,
                seq,
                _metrics(train, where),
                _metrics(test, where),
            )
            done = epoch

    # -- stored events ---------------------------------------------------

    def _read_events(self, con: sqlite3.Connection) -> None:
        rows = con.execute(
            "SELECT seq, step, kind, body FROM events ORDER BY seq"
        ).fetchall()
        for seq, step, kind, body in rows:
            where = f"{self.path}: the stored event {seq!r}"
            if kind not in ("session_ended", "training_diverged") or not isinstance(
                body, str
            ):
                raise SessionFormatError(f"{where} is of an unknown kind {kind!r}.")
            event = decode_event(body, where)
            if event.seq != seq or event.step != step or event.kind != kind:
                raise SessionFormatError(f"{where} does not match its row.")
            if isinstance(event, ev.TrainingDiverged):
                self._check_divergence(event, where)
                self.divergence = event
            elif isinstance(event, ev.SessionEnded):
                self._check_end(event, where)
                self.end = event

    def _check_divergence(self, event: ev.TrainingDiverged, where: str) -> None:
        last = self.n_steps - 1
        if (
            not self.ok
            or self.ok[-1]
            or event.step != last
            or event.seq != self.seq_first[last] + self.n_events[last] - 1
            or not isinstance(event.message, str)
        ):
            raise SessionFormatError(f"{where} does not fit the steps: damaged.")

    def _check_end(self, event: ev.SessionEnded, where: str) -> None:
        last = self.n_steps - 1
        completed = sum(self.ok)
        reason = event.reason
        opening = self.n_events_total if self.seq_first else 1 + self.n_layers
        fits = (
            type(event.steps) is int
            and event.seq == opening
            and event.steps == completed
            and (
                (reason == "completed" and completed == self.plan.total_steps)
                or (reason == "stopped" and completed < self.plan.total_steps)
                or (reason == "diverged" and bool(self.ok) and not self.ok[-1])
            )
            and event.step == (last if reason == "diverged" else max(completed - 1, 0))
        )
        if not fits:
            raise SessionFormatError(
                f"{where} (the end of the run, {reason!r} after {event.steps!r} "
                "steps) does not fit the steps recorded: the file is damaged."
            )


def _whole(value: Any, name: str, where: str, low: int) -> int:
    if type(value) is not int or value < low:
        msg = (
            f"{where} is unreadable: {name} is {value!r}, not a whole number >= {low}."
        )
        raise SessionFormatError(msg)
    return value


def _metrics(text: Any, where: str) -> dict[str, float]:
    if not isinstance(text, str):
        raise SessionFormatError(f"{where} are not stored as text.")
    try:
        value = from_json(text)
    except ValueError as err:
        raise SessionFormatError(f"{where} are not valid JSON ({err}).") from err
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and type(v) in (int, float) for k, v in value.items()
    ):
        raise SessionFormatError(f"{where} are not a table of named numbers.")
    return {k: float(v) for k, v in value.items()}
