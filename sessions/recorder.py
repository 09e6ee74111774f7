"""Record a training run into a session file, crash-safely, as it happens."""

from __future__ import annotations

import datetime as dt
import logging
import math
import platform
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import engine
from engine import events as ev
from engine.config import TrainingConfig
from engine.data import Dataset
from engine.network import NetworkSpec
from engine.optimizers import OPTIMIZERS
from engine.trainer import Trainer
from sessions.chain import ChainWriter
from sessions.codec import encode_bundle, to_json
from sessions.errors import RecordingError, SessionError
from sessions.initial import apply_initial_values, normalize_initial_values, to_meta
from sessions.schema import APPLICATION_ID, FORMAT_VERSION, SCHEMA
from sessions.state import KeyframeEncoder, encode_event, encode_summary

__all__ = ["DEFAULT_KEYFRAME_INTERVAL", "Recorder", "record"]

logger = logging.getLogger(__name__)

DEFAULT_KEYFRAME_INTERVAL = 10
"""Steps between keyframes: reading any step re-executes at most this many."""

COMMIT_INTERVAL = 0.05
"""Seconds between commits; a crash loses at most this much plus one step."""

_WAL_PAGES = 4096
"""Pages of write-ahead log (16 MB of 4 KB pages) before SQLite folds it in."""

_float_repr = float.__repr__

_PLAIN_KEY = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
)


def _metrics_json(metrics: dict[str, float]) -> str:
    """Return ``to_json(metrics)`` of a metric dict, the same text, faster.

    Plain names with finite float values (NumPy's float64 too: an accuracy is
    one) or int values are written directly, as JSON writes them (a float as
    ``float.__repr__``); anything else goes through ``to_json``.
    """
    if not metrics:  # no test set
        return "{}"
    parts = []
    for k, v in metrics.items():
        if not (type(k) is str and k and _PLAIN_KEY.issuperset(k)):
            return to_json(metrics)
        if isinstance(v, float) and math.isfinite(v):
            parts.append(f'"{k}":{_float_repr(v)}')
        elif type(v) is int:
            parts.append(f'"{k}":{v!r}')
        else:
            return to_json(metrics)
    return "{" + ",".join(parts) + "}"


class Recorder:
    """Store the events of one trainer's run in a new session file.

    The recorder is the trainer's sink.  It keeps, per step, a summary (loss,
    gradient norms, update ratios) and where the step's events sit in the log;
    every ``keyframe_interval`` steps it stores the full trainer state.  Any
    event can then be rebuilt exactly by re-executing from the nearest
    keyframe (see :class:`sessions.Session`).  Commits happen at least every
    :data:`COMMIT_INTERVAL` seconds, so a killed process loses at most that
    much training and never corrupts what was committed (SQLite WAL).

    Parameters
    ----------
    path : str or Path
        The session file to create.
    trainer : Trainer
        A trainer that has not started; the recorder becomes its sink.
    title, description : str
        Shown when listing sessions.
    keyframe_interval : int
        Steps between stored trainer states.
    overwrite : bool
        Replace an existing file instead of refusing.
    meta : dict or None
        Extra JSON-ready metadata (``parent``, ``fork_step``, ...).
    initial_values : dict or list or None
        Initial values set by hand, ``{(layer, "W" or "b", index): value}``:
        written over the trainer's drawn initial parameters before the run
        starts and listed in the meta key ``initial_values``.

    Raises
    ------
    ConfigError
        If a hand-set value names a layer, parameter or index the network
        does not have, or is not a finite number.
    """

    def __init__(
        self,
        path: str | Path,
        trainer: Trainer,
        *,
        title: str = "",
        description: str = "",
        keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL,
        overwrite: bool = False,
        meta: dict[str, Any] | None = None,
        initial_values: Any = None,
    ) -> None:
        if type(keyframe_interval) is not int or keyframe_interval < 1:
            msg = f"keyframe_interval must be >= 1; got {keyframe_interval!r}."
            raise RecordingError(msg)
        if trainer.step_index != 0 or trainer.next_seq != 0:
            msg = "A recorder needs a trainer that has not started yet."
            raise SessionError(msg)
        given = normalize_initial_values(initial_values, trainer.spec)
        if given:
            trainer.params = apply_initial_values(trainer.params, given)
        self.path = Path(path)
        self.trainer = trainer
        self.keyframe_interval = keyframe_interval
        self._keyframe = KeyframeEncoder(
            OPTIMIZERS[trainer.config.optimizer].state_names
        )
        self._steps: list[tuple[Any, ...]] = []
        self._epochs: list[tuple[Any, ...]] = []
        self._keyframes: list[tuple[Any, ...]] = []
        self._events: list[tuple[Any, ...]] = []
        self._open: tuple[int, int, int, bytes, str] | None = None
        self._seq_first = 0
        self._last_commit = time.monotonic()
        self.closed = False
        self._con = _create(self.path, overwrite)
        extra = dict(meta or {})
        if given:
            extra["initial_values"] = to_meta(given)
        self._write_header(title, description, extra)
        trainer.sink = self

    # -- the sink --------------------------------------------------------

    wants = frozenset(
        {"step_completed", "epoch_completed", "training_diverged", "session_ended"}
    )
    """The event kinds the recorder stores; the trainer builds no others.

    Every other event is rebuilt exactly on reading, by re-executing its step
    from the nearest keyframe, so building it while recording would be waste.
    """

    def __call__(self, event: ev.Event) -> None:
        """Take one event from the trainer."""
        if isinstance(event, ev.StepCompleted):
            summary = encode_summary(
                event.loss, event.data_loss, event.grad_norms, event.update_ratios
            )
            self._open = (event.step, event.epoch, self._seq_first, summary, "ok")
        elif isinstance(event, ev.EpochCompleted):
            self._epochs.append(
                (
                    event.epoch,
                    event.step,
                    event.seq,
                    _metrics_json(event.train),
                    _metrics_json(event.test),
                )
            )
        elif isinstance(event, ev.TrainingDiverged):
            self._close_step(event.seq)
            nan = (float("nan"),) * len(self.trainer.spec.layers)
            summary = encode_summary(float("nan"), float("nan"), nan, nan)
            self._open = (event.step, event.epoch, self._seq_first, summary, "diverged")
            self._close_step(event.seq + 1)
            self._events.append(
                (event.seq, event.step, event.kind, encode_event(event))
            )
        elif isinstance(event, ev.SessionEnded):
            self._close_step(event.seq)
            self._events.append(
                (event.seq, event.step, event.kind, encode_event(event))
            )

    def before_step(self, trainer: Trainer) -> None:
        """Note where the step starts, store a due keyframe, commit when due."""
        step, next_seq = trainer.step_index, trainer.next_seq
        if self._open is not None:
            self._close_step(next_seq)
        # Step 0 also holds the opening events (session start, initial values).
        self._seq_first = next_seq if step else 0
        if step % self.keyframe_interval == 0:
            state = trainer.state()
            self._keyframes.append((step, state.seq, self._keyframe.encode(state)))
        now = time.monotonic()
        if now - self._last_commit >= COMMIT_INTERVAL:
            self.flush()

    def run(
        self,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[Trainer], object] | None = None,
    ) -> str:
        """Run the trainer to its end, recording it; close the file; return why.

        ``should_stop()`` is polled and ``progress(trainer)`` called before
        every step.  Whatever ends the run (completion, a stop, divergence, an
        exception), everything recorded is committed and the file closed.
        """

        def before_step(t: Trainer) -> None:
            self.before_step(t)
            if progress is not None:
                progress(t)

        hook = self.before_step if progress is None else before_step
        try:
            return self.trainer.run(should_stop=should_stop, before_step=hook)
        finally:
            self.close()

    # -- storage ---------------------------------------------------------

    def flush(self) -> None:
        """Commit everything received so far."""
        con = self._con
        # The link covering these rows is committed with them, never apart.
        link = self._chain.next(
            (self._keyframes, self._steps, self._epochs, self._events)
        )
        with con:
            if link is not None:
                con.execute("INSERT INTO chain VALUES (?, ?, ?, ?, ?, ?)", link)
            if self._keyframes:
                con.executemany(
                    "INSERT INTO keyframes VALUES (?, ?, ?)", self._keyframes
                )
            if self._steps:
                con.executemany(
                    "INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?)", self._steps
                )
            if self._epochs:
                con.executemany(
                    "INSERT INTO epochs VALUES (?, ?, ?, ?, ?)", self._epochs
                )
            if self._events:
                con.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", self._events)
        if link is not None:
            self._chain.accept(link)
        self._keyframes.clear()
        self._steps.clear()
        self._epochs.clear()
        self._events.clear()
        self._last_commit = time.monotonic()

    def close(self) -> None:
        """Commit what is left, fold the write-ahead log into the file, close it."""
        if self.closed:
            return
        self.flush()
        self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._con.close()
        self.closed = True
        logger.info("Session saved: %s", self.path)

    def _close_step(self, next_seq: int) -> None:
        if self._open is None:
            return
        step, epoch, seq_first, summary, status = self._open
        self._steps.append(
            (step, epoch, seq_first, next_seq - seq_first, status, summary, time.time())
        )
        self._open = None

    def _write_header(
        self, title: str, description: str, extra: dict[str, Any]
    ) -> None:
        t = self.trainer
        meta = {
            "format_version": FORMAT_VERSION,
            "title": title or f"{t.data.name} {'-'.join(map(str, t.spec.sizes))}",
            "description": description,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "glassnet_version": engine.__version__,
            "numpy_version": np.__version__,
            "python_version": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}",
            "byteorder": sys.byteorder,
            "network": t.spec.to_dict(),
            "config": t.config.to_dict(),
            "dataset": t.data.describe(),
            "dataset_hash": t.data.content_hash(),
            "keyframe_interval": self.keyframe_interval,
            "batch_size": t.batch_size,
            "steps_per_epoch": t.steps_per_epoch,
            "total_steps": t.total_steps,
            "notices": t.notices,
            "parent": None,
            "fork_step": None,
        }
        meta.update(extra)
        d = t.data
        bundle = encode_bundle(
            {
                "X_train": d.X_train,
                "y_train": d.y_train,
                "X_test": d.X_test,
                "y_test": d.y_test,
            },
        )
        meta_rows = [(key, to_json(value)) for key, value in meta.items()]
        arrays_rows = [("dataset", bundle)]
        self._chain = ChainWriter()
        link = self._chain.first(meta_rows, arrays_rows)
        with self._con:
            self._con.executemany("INSERT INTO meta VALUES (?, ?)", meta_rows)
            self._con.executemany("INSERT INTO arrays VALUES (?, ?)", arrays_rows)
            self._con.execute("INSERT INTO chain VALUES (?, ?, ?, ?, ?, ?)", link)
        self._chain.accept(link)


def record(
    spec: NetworkSpec,
    config: TrainingConfig,
    data: Dataset,
    path: str | Path,
    *,
    title: str = "",
    description: str = "",
    keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL,
    overwrite: bool = False,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[Trainer], object] | None = None,
    meta: dict[str, Any] | None = None,
    initial_values: Any = None,
) -> str:
    """Train and record a whole run into ``path``; return why it ended.

    ``should_stop()`` is polled before every step (the app's Stop button);
    ``progress(trainer)`` is called before every step.  Whatever ends the run
    (completion, a stop, divergence, an exception), everything recorded until
    then is committed and the file is closed cleanly.  ``initial_values``
    (``{(layer, "W" or "b", index): value}``) replaces drawn initial values by
    hand-set ones; see :class:`Recorder`.
    """
    trainer = Trainer(spec, config, data)
    rec = Recorder(
        path,
        trainer,
        title=title,
        description=description,
        keyframe_interval=keyframe_interval,
        overwrite=overwrite,
        meta=meta,
        initial_values=initial_values,
    )

    return rec.run(should_stop, progress)


def _create(path: Path, overwrite: bool) -> sqlite3.Connection:
    """Return a connection to a new, empty session file at ``path``."""
    if path.is_dir():
        msg = f"{path} is a folder; give the path of a session file to write."
        raise RecordingError(msg)
    if path.exists() or Path(f"{path}-wal").exists():
        if not overwrite:
            msg = (
                f"{path} already exists; choose another name, or pass "
                "overwrite=True (--overwrite on the command line) to replace it."
            )
            raise RecordingError(msg)
    try:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as err:
        msg = f"Cannot create {path}: {err}. Choose a path in a folder you can write."
        raise RecordingError(msg) from err
    con.isolation_level = "DEFERRED"
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    # Fold the write-ahead log into the file every 16 MB instead of every 4 MB:
    # each fold waits for the disk (fsync), which cost a recording more than
    # its inserts.  close() folds in the rest.
    con.execute(f"PRAGMA wal_autocheckpoint = {_WAL_PAGES}")
    with con:
        con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        con.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        for ddl in SCHEMA.values():
            con.execute(ddl)
    return con
