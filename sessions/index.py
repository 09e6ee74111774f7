"""Read a session's row tables and check every row before anything trusts it.

A session file may come from anyone, so each row is checked for its types and
for how it fits the rows around it (steps numbered without gaps, events that
follow on, keyframes where the interval puts them) as it is first read.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import threading
import weakref
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from engine import events as ev
from engine.config import TrainingConfig
from engine.network import NetworkSpec
from sessions.codec import from_json
from sessions.errors import SessionFormatError
from sessions.state import decode_event

__all__ = ["MAX_PARAMS", "EpochSeries", "Plan", "StepIndex", "check_meta"]

MAX_PARAMS = 10_000_000
"""The most weights and biases a session may declare (glassnet nets are small)."""

_STATUSES = ("ok", "diverged")

_MOST_EVENTS = 2**31
"""Events per step the one-query check accepts (sums then stay far inside int64)."""

# Epoch metrics in use anywhere in this process, by content (as Session.series
# is shared): the app opens one Session per user, each would decode its own.
_shared_epochs: weakref.WeakValueDictionary[tuple[Any, ...], EpochSeries] = (
    weakref.WeakValueDictionary()
)
_shared_lock = threading.Lock()

# The step arrays of ended runs, by content, shared the same way.
_shared_steps: weakref.WeakValueDictionary[bytes, _StepArrays] = (
    weakref.WeakValueDictionary()
)

# One pass over the new step rows (up to step :high, the last one): how many,
# how many pass the checks of a row on its own (a NULL fails), and the event
# numbers as text, to turn into NumPy arrays.  Comparisons stand in for most
# typeof() calls, which cost more: numbers sort before text and text before
# blobs, so ``x < ''`` holds for numbers only and ``x >= x''`` for blobs only,
# and a real number among the event numbers does not parse as an integer.
_STEPS_AT_ONCE = """
SELECT count(*),
    sum(epoch = (step + :offset) / :spe AND typeof(epoch) = 'integer'
        AND seq_first < '' AND n_events BETWEEN 1 AND :most
        AND (status = 'ok' OR status = 'diverged' AND step = :high)
        AND summary >= x'' AND length(summary) = :width
        AND recorded_at < ''),
    group_concat(seq_first), group_concat(n_events)
FROM steps WHERE step >= :start
"""

# The same for the new keyframe rows (the step is the row id: always an integer;
# typeof() here, as a comparison would load each keyframe).
_KEYFRAMES_AT_ONCE = """
SELECT count(*), sum(CASE WHEN seq < '' AND typeof(state) = 'blob' THEN 0 ELSE 1 END),
    group_concat(step), group_concat(seq)
FROM keyframes WHERE step > :done
"""

# The same for the new epoch rows (their metrics are read on first use).
_EPOCHS_AT_ONCE = """
SELECT count(*), min(epoch), max(epoch),
    sum(CASE WHEN step < '' AND seq < '' THEN 0 ELSE 1 END),
    group_concat(step), group_concat(seq)
FROM epochs WHERE epoch > :done
"""


@dataclass(frozen=True)
class EpochSeries:
    """Per-epoch metrics on the training and the test set, by metric name.

    Every array has one entry per epoch and is read-only; ``train`` and
    ``test`` are read-only mappings.  Sessions reading the same metrics share
    one EpochSeries.
    """

    epoch: np.ndarray
    step: np.ndarray
    train: Mapping[str, np.ndarray]
    test: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class _StepArrays:
    """The step arrays of one ended run, shared by the indexes that read it."""

    seq_first: array[int]
    n_events: array[int]
    ok: array[int]


@dataclass(frozen=True)
class Plan:
    """The schedule a session's metadata declares, checked for consistency."""

    keyframe_interval: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    n_train: int
    n_test: int
    start: int = 0
    """Where in the schedule the run starts (a fork's ``config.start_step``)."""

    @property
    def first_epoch(self) -> int:
        """Return the number of the epoch the run's first step belongs to."""
        return self.start // self.steps_per_epoch

    def epoch_end(self, epoch: int) -> int:
        """Return the run's own number of the last step of ``epoch``."""
        return (epoch + 1) * self.steps_per_epoch - 1 - self.start


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
        start=config.start_step,
    )
    batch = n_train if config.batch_size is None else config.batch_size
    if (
        plan.batch_size != batch
        or plan.steps_per_epoch != math.ceil(n_train / batch)
        or plan.total_steps != plan.steps_per_epoch * config.epochs - config.start_step
    ):
        msg = f"{where} is unreadable: batch size, steps per epoch and total disagree."
        raise SessionFormatError(msg)
    return plan


@dataclass
class StepIndex:
    """Where each step's events sit, read row by row and checked as it grows.

    ``seq_first[s]`` and ``n_events[s]`` place step ``s`` and ``ok[s]`` says it
    did not diverge (compact arrays: a 100,000-step run's index takes about
    2 MB, where Python lists took 8; the app keeps one per user).
    ``keyframe_seqs[i]`` is the ``seq`` of the keyframe of step
    ``i * keyframe_interval`` and ``epoch_seqs[e]`` the ``seq`` of epoch ``e``'s
    metrics (its last step is ``(e + 1) * steps_per_epoch - 1``); the metrics
    themselves are read by :meth:`metrics` on first use.
    """

    path: Path
    plan: Plan
    n_layers: int
    seq_first: array[int] = field(default_factory=lambda: array("q"))
    n_events: array[int] = field(default_factory=lambda: array("q"))
    ok: array[int] = field(default_factory=lambda: array("b"))
    keyframe_seqs: array[int] = field(default_factory=lambda: array("q"))
    epoch_seqs: array[int] = field(default_factory=lambda: array("q"))
    _metrics: EpochSeries | None = field(default=None, repr=False)
    _steps: _StepArrays | None = field(default=None, repr=False)
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

    @property
    def n_epochs(self) -> int:
        """Return the number of epochs whose metrics were recorded."""
        return len(self.epoch_seqs)

    def keyframe_seq(self, step: int) -> int | None:
        """Return the ``seq`` of the keyframe of ``step``, None if there is none."""
        i, off = divmod(step, self.plan.keyframe_interval)
        if off or not 0 <= i < len(self.keyframe_seqs):
            return None
        return self.keyframe_seqs[i]

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
        if self.end is not None:
            self._share_steps()

    def _share_steps(self) -> None:
        """Use the step arrays another index of the same ended run already holds.

        An ended run's index no longer grows (``update`` returns at once), so
        its arrays are never changed again and one copy serves every index
        of the same content.
        """
        digest = hashlib.blake2b(digest_size=16)
        for column in (self.seq_first, self.n_events, self.ok):
            digest.update(len(column).to_bytes(8, "little"))
            digest.update(column)
        mine = _StepArrays(self.seq_first, self.n_events, self.ok)
        with _shared_lock:
            shared = _shared_steps.setdefault(digest.digest(), mine)
        self._steps = shared
        self.seq_first, self.n_events, self.ok = (
            shared.seq_first,
            shared.n_events,
            shared.ok,
        )

    # -- steps -------------------------------------------------------------

    def _read_steps(self, con: sqlite3.Connection) -> None:
        """Read the new step rows: all at once, or row by row to say what is wrong.

        The checks run in one SQL pass (types, sizes, statuses, epochs) and on
        NumPy arrays (the events of each step follow on): a file of 100,000
        steps is checked on every open.  When anything does not fit, the rows
        are read again one by one, which names the first row that is wrong.
        """
        width = 8 * (2 + 2 * self.n_layers)
        start = self.n_steps
        (high,) = con.execute("SELECT max(step) FROM steps").fetchone()
        if high is None or high < start:
            return
        row = con.execute(
            _STEPS_AT_ONCE,
            {
                "start": start,
                "high": high,
                "spe": self.plan.steps_per_epoch,
                "offset": self.plan.start,
                "width": width,
                "most": _MOST_EVENTS,
            },
        ).fetchone()
        (last_status,) = con.execute(
            "SELECT status FROM steps WHERE step = ?", (high,)
        ).fetchone()
        if not self._fit_steps(start, high, row, last_status == "ok"):
            self._read_steps_one_by_one(con, width)

    def _fit_steps(
        self, start: int, high: int, row: tuple[Any, ...], last_ok: bool
    ) -> bool:
        """Append steps ``start`` to ``high`` summed up in ``row`` if all is well.

        Returns False, appending nothing, when any check fails.
        """
        n, good, firsts_text, counts_text = row
        if (
            good != n
            or high != start + n - 1
            or high >= self.plan.total_steps
            or self.n_events_total >= _MOST_EVENTS**2
            or (self.ok and not self.ok[-1])
        ):
            return False
        columns = _int_columns(n, firsts_text, counts_text)
        if columns is None:
            return False
        firsts, counts = columns
        expected = np.empty(n, dtype=np.int64)
        expected[0] = 0
        np.cumsum(counts[:-1], out=expected[1:])
        expected += self.n_events_total
        if not np.array_equal(firsts, expected):
            return False
        self.seq_first.extend(firsts.tolist())
        self.n_events.extend(counts.tolist())
        oks = [True] * n
        oks[-1] = last_ok
        self.ok.extend(oks)
        return True

    def _read_steps_one_by_one(self, con: sqlite3.Connection, width: int) -> None:
        rows = con.execute(
            "SELECT step, epoch, seq_first, n_events, status, typeof(summary), "
            "length(summary), typeof(recorded_at) FROM steps WHERE step >= ? "
            "ORDER BY step",
            (self.n_steps,),
        ).fetchall()
        spe, total = self.plan.steps_per_epoch, self.plan.total_steps
        firsts, counts, oks = self.seq_first, self.n_events, self.ok
        # The same checks as _fit_steps, row by row, to name the row that is wrong.
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
                or epoch != (step + self.plan.start) // spe
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
        """Read the new keyframe rows: all at once, or one by one on a problem."""
        done = (len(self.keyframe_seqs) - 1) * self.plan.keyframe_interval
        row = con.execute(_KEYFRAMES_AT_ONCE, {"done": done}).fetchone()
        if not self._fit_keyframes(done, row):
            self._read_keyframes_one_by_one(con, done)

    def _fit_keyframes(self, done: int, row: tuple[Any, ...]) -> bool:
        n, bad, steps_text, seqs_text = row
        if not n:
            return True
        columns = None if bad else _int_columns(n, steps_text, seqs_text)
        if columns is None:
            return False
        steps, seqs = columns
        k = self.plan.keyframe_interval
        first = done + k if done >= 0 else 0
        if not np.array_equal(steps, first + k * np.arange(n, dtype=np.int64)):
            return False
        opening = 1 + self.n_layers
        firsts, n_steps, total = self.seq_first, self.n_steps, self.n_events_total
        step_list = steps.tolist()
        want = [
            (opening if s == 0 else firsts[s])
            if s < n_steps
            else (total if s else opening)
            for s in step_list
        ]
        seq_list = seqs.tolist()
        if seq_list != want:
            return False
        self.keyframe_seqs.extend(seq_list)
        return True

    def _read_keyframes_one_by_one(self, con: sqlite3.Connection, done: int) -> None:
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
            self.keyframe_seqs.append(seq)
            done = step

    # -- epochs ----------------------------------------------------------

    def _read_epochs(self, con: sqlite3.Connection) -> None:
        """Read where the new epochs' metrics sit; the metrics wait for ``metrics``."""
        done = self.plan.first_epoch + self.n_epochs - 1
        row = con.execute(_EPOCHS_AT_ONCE, {"done": done}).fetchone()
        if not self._fit_epochs(done, row):
            self._read_epochs_one_by_one(con, done)

    def _fit_epochs(self, done: int, row: tuple[Any, ...]) -> bool:
        n, low, high, bad, steps_text, seqs_text = row
        if not n:
            return True
        if bad or low != done + 1 or high != done + n:
            return False
        columns = _int_columns(n, steps_text, seqs_text)
        if columns is None:
            return False
        steps, seqs = columns
        spe = self.plan.steps_per_epoch
        epochs = np.arange(done + 1, done + 1 + n, dtype=np.int64)
        ends = (epochs + 1) * spe - 1 - self.plan.start
        if not np.array_equal(steps, ends) or (seqs < 0).any():
            return False
        firsts, counts, n_steps = self.seq_first, self.n_events, self.n_steps
        step_list, seq_list = steps.tolist(), seqs.tolist()
        for step, seq in zip(step_list, seq_list, strict=True):
            if step < n_steps and seq != firsts[step] + counts[step] - 1:
                return False
        self.epoch_seqs.extend(seq_list)
        return True

    def _read_epochs_one_by_one(self, con: sqlite3.Connection, done: int) -> None:
        rows = con.execute(
            "SELECT epoch, step, seq FROM epochs WHERE epoch > ? ORDER BY epoch",
            (done,),
        ).fetchall()
        for epoch, step, seq in rows:
            where = f"{self.path}: the metrics of epoch {epoch!r}"
            if (
                type(epoch) is not int
                or epoch != done + 1
                or type(step) is not int
                or step != self.plan.epoch_end(epoch)
                or type(seq) is not int
                or seq < 0
            ):
                raise SessionFormatError(f"{where} do not fit the steps: damaged.")
            if step < self.n_steps:
                last = self.seq_first[step] + self.n_events[step] - 1
                if seq != last:
                    raise SessionFormatError(f"{where} have a wrong event number.")
            self.epoch_seqs.append(seq)
            done = epoch

    def metrics(self, con: sqlite3.Connection) -> EpochSeries:
        """Return the train and test metrics of every epoch read so far.

        They are read and checked on first use (opening a long run reads only
        where each epoch sits), and again once more epochs were recorded.  Every
        StepIndex in this process that reads the same metrics gets the same
        read-only :class:`EpochSeries` (the app keeps one index per user).

        Raises
        ------
        SessionFormatError
            If an epoch's metrics are not a JSON table of named numbers.
        """
        n = self.n_epochs
        if self._metrics is not None and len(self._metrics.epoch) == n:
            return self._metrics
        rows = con.execute(
            "SELECT epoch, train, test FROM epochs WHERE epoch < ? ORDER BY epoch",
            (self.plan.first_epoch + n,),
        ).fetchall()
        if len(rows) != n:
            msg = f"{self.path}: the metrics of some epochs are gone: damaged."
            raise SessionFormatError(msg)
        key = _content_key(rows, self.plan)
        with _shared_lock:
            shared = None if key is None else _shared_epochs.get(key)
        if shared is None:
            shared = self._decode_metrics(rows)
            if key is not None:
                with _shared_lock:
                    shared = _shared_epochs.setdefault(key, shared)
        self._metrics = shared
        return shared

    def _decode_metrics(self, rows: list[tuple[Any, ...]]) -> EpochSeries:
        """Check and decode the metrics of every epoch into read-only columns."""
        train, test = [], []
        for epoch, train_text, test_text in rows:
            where = f"{self.path}: the metrics of epoch {epoch!r}"
            train.append(_metrics(train_text, where))
            test.append(_metrics(test_text, where))
        epochs = np.arange(len(rows), dtype=np.int64) + self.plan.first_epoch
        steps = (epochs + 1) * self.plan.steps_per_epoch - 1 - self.plan.start
        epochs.flags.writeable = False
        steps.flags.writeable = False
        return EpochSeries(
            epoch=epochs, step=steps, train=_columns(train), test=_columns(test)
        )

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


def _columns(rows: list[dict[str, float]]) -> Mapping[str, np.ndarray]:
    """Return one read-only column per metric name (NaN where a row lacks it)."""
    keys = sorted({k for r in rows for k in r})
    columns = {}
    for k in keys:
        column = np.array([r.get(k, np.nan) for r in rows], dtype=np.float64)
        column.flags.writeable = False
        columns[k] = column
    return MappingProxyType(columns)


def _content_key(rows: list[tuple[Any, ...]], plan: Plan) -> Any:
    """Return a key naming the epoch rows' content, None if a metric is not text.

    Rows whose metrics are not text are not shared: decoding them fails.
    """
    digest = hashlib.blake2b(digest_size=16)
    for _, train, test in rows:
        for text in (train, test):
            if not isinstance(text, str):
                return None
            data = text.encode("utf-8", "surrogatepass")
            # The length first, so two rows cannot run into each other.
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return (len(rows), plan, digest.digest())


def _int_columns(n: int, *texts: Any) -> list[np.ndarray] | None:
    """Parse comma-separated whole numbers (SQLite ``group_concat``), n each.

    Returns None when a value is not text, does not parse, or has another
    length than ``n``: the caller then checks the rows one by one.
    """
    columns = []
    for text in texts:
        if not isinstance(text, str):
            return None
        try:
            column = np.fromstring(text, dtype=np.int64, sep=",")
        except ValueError:
            return None
        if len(column) != n:
            return None
        columns.append(column)
    return columns
