"""Open a recorded session and read any event, any step or whole-run series."""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import logging
import platform
import sqlite3
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import engine
from engine import events as ev
from engine.config import TrainingConfig
from engine.data import Dataset
from engine.errors import ConfigError
from engine.network import NetworkSpec, Params
from engine.optimizers import OPTIMIZERS
from engine.trainer import Trainer, TrainerState
from sessions.chain import ChainReport, check_chain
from sessions.codec import MAX_ARRAY_BYTES, decode_bundle, from_json
from sessions.errors import SessionFormatError, SessionReproducibilityError
from sessions.index import EpochSeries, StepIndex, check_meta
from sessions.initial import apply_initial_values, initial_values_from_meta
from sessions.schema import check_schema, current_config
from sessions.state import decode_state, decode_summary, encode_summary

__all__ = ["EpochSeries", "Series", "Session", "open_session"]

logger = logging.getLogger(__name__)

# Series in use anywhere in this process, by content; an entry goes away with
# the last reference to its Series.
_shared_series: weakref.WeakValueDictionary[tuple[Any, ...], Series] = (
    weakref.WeakValueDictionary()
)
_series_lock = threading.Lock()

_MAX_META_BYTES = 16 << 20
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Series:
    """Whole-run values, one entry per recorded step (diverged step excluded).

    ``grad_norms`` and ``update_ratios`` have shape (n_steps, n_layers).
    """

    step: np.ndarray
    epoch: np.ndarray
    loss: np.ndarray
    data_loss: np.ndarray
    grad_norms: np.ndarray
    update_ratios: np.ndarray
    recorded_at: np.ndarray


class Session:
    """A session file opened for reading; also follows a file still being written.

    Parameters
    ----------
    path : str or Path
        The session file.
    verify_steps : bool
        Check every re-executed step against its stored summary (loss,
        gradient norms, update ratios) and raise
        :class:`SessionReproducibilityError` if they differ.

    Raises
    ------
    SessionFormatError
        If the file is missing, not a session, damaged, from a newer glassnet,
        or declares sizes beyond the limits.

    Notes
    -----
    The file stores a keyframe (the full trainer state) every few steps and a
    summary of every step.  The events of a step are rebuilt by re-executing
    it from the nearest earlier keyframe, which is exact on a machine whose
    NumPy gives the same results; every rebuilt step is checked against its
    stored summary.
    """

    def __init__(self, path: str | Path, *, verify_steps: bool = True) -> None:
        self.path = Path(path)
        self.verify_steps = verify_steps
        self._con = _connect(self.path)
        try:
            self.format_version = check_schema(self._con, str(self.path))
            self.meta = self._read_meta()
            self.meta["config"] = current_config(
                self.meta.get("config"), self.format_version
            )
            self.spec = NetworkSpec.from_dict(self.meta["network"])
            self.config = TrainingConfig.from_dict(self.meta["config"])
            self.plan = check_meta(self.meta, self.spec, self.config, self.path)
            # Values set by hand over the drawn initialization (none in old files).
            self.initial_values = initial_values_from_meta(self.meta, self.spec)
            self.keyframe_interval = self.plan.keyframe_interval
        except SessionFormatError:
            self._con.close()
            raise
        except sqlite3.DatabaseError as err:
            self._con.close()
            raise _damaged(self.path, err) from err
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            self._con.close()
            msg = f"{self.path} has unreadable metadata ({err}): the file is damaged."
            raise SessionFormatError(msg) from err
        self.n_layers = len(self.spec.layers)
        # A fork starts from its parent's recorded state, not from its seed.
        parent = self.meta.get("parent")
        self.fork_of: dict[str, Any] | None = (
            parent if isinstance(parent, dict) else None
        )
        self._state_names = OPTIMIZERS[self.config.optimizer].state_names
        self._dataset: Dataset | None = None
        self._cache: Trainer | None = None
        self._start_checked = False
        self._integrity: tuple[tuple[int, str], ChainReport] | None = None
        self._index = StepIndex(self.path, self.plan, self.n_layers)
        try:
            self.refresh()
        except SessionFormatError:
            self._con.close()
            raise

    # -- what the file holds --------------------------------------------

    @property
    def title(self) -> str:
        """Return the title given when recording."""
        return str(self.meta.get("title", ""))

    @property
    def dataset(self) -> Dataset:
        """Return the recorded dataset (loaded on first use, hash checked)."""
        if self._dataset is None:
            self._dataset = self._read_dataset()
        return self._dataset

    def refresh(self) -> None:
        """Re-read how far the run got (for a file another process still writes)."""
        try:
            self._index.update(self._con)
        except sqlite3.DatabaseError as err:
            raise _damaged(self.path, err) from err
        self.end = self._index.end
        self.divergence = self._index.divergence
        self.last_step = self._index.n_steps - 1
        self.n_recorded = self._index.n_steps

    @property
    def n_steps(self) -> int:
        """Return how many steps can be read (a diverged last step included)."""
        return self.last_step + 1

    @property
    def status(self) -> str:
        """Return ``completed``, ``stopped``, ``diverged`` or ``incomplete``.

        ``incomplete`` means no end was recorded: the run is still being
        written, or the recording process died (everything committed stays
        readable).
        """
        return "incomplete" if self.end is None else self.end.reason

    @property
    def n_events(self) -> int:
        """Return the number of events recorded (the next ``seq``)."""
        return self._index.n_events_total

    # -- whole-run series ----------------------------------------------

    def series(self) -> Series:
        """Return loss, gradient norms and update ratios of every step, in one read.

        The arrays are read-only.  Every ``Session`` in this process that reads
        the same values gets the same arrays (the app opens one Session per
        user, and a long run's series is megabytes).
        """
        n = sum(self._index.ok)
        rows = self._query(
            "SELECT summary, recorded_at FROM steps WHERE status = 'ok' AND step < ? "
            "ORDER BY step",
            (n,),
        )
        width = 2 + 2 * self.n_layers
        blob = b"".join(r[0] for r in rows)
        if len(rows) != n or len(blob) != 8 * width * n:
            msg = f"{self.path} has step summaries of the wrong size: it is damaged."
            raise SessionFormatError(msg)
        recorded_at = np.array([r[1] for r in rows], dtype=np.float64)
        # Same content, same arrays: the key is a digest of everything returned.
        digest = hashlib.blake2b(blob, digest_size=16)
        digest.update(recorded_at.tobytes())
        key = (n, width, self.plan.steps_per_epoch, digest.digest())
        with _series_lock:
            shared = _shared_series.get(key)
        if shared is not None:
            return shared
        values = np.frombuffer(blob, dtype="<f8").reshape(n, width)
        L = self.n_layers
        steps = np.arange(n, dtype=np.int64)
        epoch = steps // self.plan.steps_per_epoch
        for arr in (steps, epoch, recorded_at):
            arr.flags.writeable = False
        series = Series(
            step=steps,
            epoch=epoch,
            loss=values[:, 0],
            data_loss=values[:, 1],
            grad_norms=values[:, 2 : 2 + L],
            update_ratios=values[:, 2 + L :],
            recorded_at=recorded_at,
        )
        with _series_lock:
            _shared_series[key] = series
        return series

    def epochs(self) -> EpochSeries:
        """Return the per-epoch train and test metrics.

        The arrays are read-only, and shared, like :meth:`series`, by every
        ``Session`` in this process that reads the same metrics.
        """
        try:
            return self._index.metrics(self._con)
        except sqlite3.DatabaseError as err:
            raise _damaged(self.path, err) from err

    # -- random access ----------------------------------------------------

    def step_events(self, step: int) -> list[ev.Event]:
        """Return every event of ``step``, rebuilt exactly from the nearest keyframe.

        Step 0 starts with ``SessionStarted`` and the initial parameters; the
        last step ends with ``SessionEnded`` when the run ended.
        """
        row = self._step_row(step)
        log: list[ev.Event] = []
        if step == 0:
            # Rewind the keyframe to seq 0 so the opening events come first.
            start = dataclasses.replace(self._trainer_before(0).state(), seq=0)
            trainer = Trainer(self.spec, self.config, self.dataset, state=start)
            trainer.sink = log.append
            trainer.begin()
        else:
            trainer = self._trainer_before(step)
            trainer.sink = log.append
        trainer.train_step()
        trainer.sink = None
        self._check_step(step, row, log)
        self._cache = trainer if not trainer.done else None
        if self.end is not None and self.end.step == step:
            log.append(self.end)
        return log

    def event(self, seq: int) -> ev.Event:
        """Return the event with sequence number ``seq``."""
        if self.end is not None and seq == self.end.seq:
            return self.end
        step = self.step_of(seq)
        for event in self.step_events(step):
            if event.seq == seq:
                return event
        msg = f"Event {seq} is not in the session (it has {self.n_events} events)."
        raise IndexError(msg)

    def at(self, seq: int) -> ev.Event:
        """Return the event with sequence number ``seq`` (alias of :meth:`event`)."""
        return self.event(seq)

    def events(self, start: int = 0, stop: int | None = None) -> list[ev.Event]:
        """Return the events with ``start <= seq < stop`` (Python slice rules)."""
        first, last, _ = slice(start, stop).indices(self.n_events)
        if first >= last:
            return []
        out: list[ev.Event] = []
        step = self.step_of(first)
        while True:
            for event in self.step_events(step):
                if event.seq >= last:
                    return out
                if event.seq >= first:
                    out.append(event)
            step += 1
            if step > self.last_step:
                return out

    def last(self) -> ev.Event:
        """Return the last recorded event."""
        return self.event(self.n_events - 1)

    def step_of(self, seq: int) -> int:
        """Return the step an event belongs to."""
        if self.end is not None and seq == self.end.seq:
            return self.end.step
        firsts = self._index.seq_first
        i = bisect.bisect_right(firsts, seq) - 1
        if seq < 0 or i < 0 or seq >= self.n_events:
            msg = f"Event {seq} is not in the session (it has {self.n_events} events)."
            raise IndexError(msg)
        return i

    def state_before(self, step: int) -> TrainerState:
        """Return the exact trainer state before ``step`` ran."""
        return self._trainer_before(step).state()

    def params_after(self, step: int) -> Params:
        """Return the parameters after ``step`` (``-1``: the initial parameters)."""
        if step < 0:
            return self.state_before(0).params
        trainer = self._trainer_before(step)
        trainer.train_step()
        self._cache = trainer if not trainer.done else None
        return trainer.params

    def trainer_before(self, step: int, sink: Any = None) -> Trainer:
        """Return a new trainer positioned before ``step``, e.g. to fork a run."""
        state = self.state_before(step)
        return Trainer(self.spec, self.config, self.dataset, sink, state=state)

    def integrity(self) -> ChainReport:
        """Return whether the file's hash chain matches its rows (see chain.py).

        Checked on its own connection, as of one commit; kept until
        :meth:`refresh` finds more steps or an end.
        """
        key = (self.n_recorded, self.status)
        if self._integrity is None or self._integrity[0] != key:
            con = _connect(self.path)
            try:
                report = check_chain(con, self.format_version)
            except sqlite3.DatabaseError as err:
                raise _damaged(self.path, err) from err
            finally:
                con.close()
            self._integrity = (key, report)
        return self._integrity[1]

    def close(self) -> None:
        """Close the file."""
        self._con.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        path, n, status = str(self.path), self.n_recorded, self.status
        return f"Session({path!r}, steps={n}, status={status!r})"

    # -- helpers ---------------------------------------------------------

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._con.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as err:
            raise _damaged(self.path, err) from err

    def _read_meta(self) -> dict[str, Any]:
        big = self._query(
            "SELECT key FROM meta WHERE length(value) > ?", (_MAX_META_BYTES,)
        )
        if big:
            msg = f"{self.path} has an oversized metadata entry {big[0][0]!r}."
            raise SessionFormatError(msg)
        try:
            rows = self._query("SELECT key, value FROM meta")
            return {k: from_json(v) for k, v in rows}
        except (ValueError, TypeError) as err:
            msg = f"{self.path} has unreadable metadata ({err})."
            raise SessionFormatError(msg) from err

    def _read_dataset(self) -> Dataset:
        rows = self._query("SELECT length(bundle) FROM arrays WHERE name = 'dataset'")
        if not rows:
            raise SessionFormatError(f"{self.path} holds no dataset.")
        if rows[0][0] > 4 * MAX_ARRAY_BYTES:
            raise SessionFormatError(f"{self.path} holds an oversized dataset.")
        blob = self._query("SELECT bundle FROM arrays WHERE name = 'dataset'")[0][0]
        d = self.meta["dataset"]
        plan, n_in, n_out = self.plan, self.spec.n_in, self.spec.layers[-1].n_out
        expected: dict[str, tuple[int, ...]] = {
            "X_train": (plan.n_train, n_in),
            "y_train": (plan.n_train, n_out),
            "X_test": (plan.n_test, n_in),
            "y_test": (plan.n_test, n_out),
        }
        arrays, _ = decode_bundle(blob, f"{self.path}: the dataset", expected)
        try:
            data = Dataset(
                name=d["name"],
                task=d["task"],
                X_train=arrays["X_train"],
                y_train=arrays["y_train"],
                X_test=arrays["X_test"],
                y_test=arrays["y_test"],
                feature_names=tuple(d["feature_names"]),
                class_names=tuple(d["class_names"]),
                target_name=d["target_name"],
                info=d.get("info", {}),
            )
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            msg = f"{self.path} holds an unreadable dataset ({err})."
            raise SessionFormatError(msg) from err
        if data.content_hash() != self.meta.get("dataset_hash"):
            msg = (
                f"{self.path}: the stored dataset does not match its recorded hash; "
                "the file was altered or damaged."
            )
            raise SessionFormatError(msg)
        return data

    def _step_row(self, step: int) -> tuple[Any, ...]:
        if not 0 <= step < self.n_steps or isinstance(step, bool):
            msg = (
                f"Step {step} is not in the session; it has steps 0 to "
                f"{self.last_step}."
            )
            raise IndexError(msg)
        rows = self._query("SELECT summary FROM steps WHERE step = ?", (step,))
        index = self._index
        status = "ok" if index.ok[step] else "diverged"
        return (index.seq_first[step], index.n_events[step], status, rows[0][0])

    def _trainer_before(self, step: int) -> Trainer:
        """Return a silent trainer positioned just before ``step``."""
        cache = self._cache
        if (
            cache is not None
            and cache.step_index <= step < cache.step_index + self.keyframe_interval
        ):
            trainer = cache
            self._cache = None
        else:
            start = step - step % self.keyframe_interval
            if self._index.keyframe_seq(start) is None:
                msg = f"{self.path} has no keyframe for step {start}: it is damaged."
                raise SessionFormatError(msg)
            trainer = self._trainer_at_keyframe(start)
        while trainer.step_index < step:
            trainer.train_step()
        return trainer

    def _trainer_at_keyframe(self, step: int) -> Trainer:
        """Return a silent trainer built from the keyframe of ``step``."""
        rows = self._query(
            "SELECT length(state), state FROM keyframes WHERE step = ?", (step,)
        )
        what = f"{self.path}: the keyframe of step {step}"
        if rows[0][0] > MAX_ARRAY_BYTES:
            raise SessionFormatError(f"{what} is oversized.")
        state = decode_state(
            rows[0][1],
            self.spec,
            self._state_names,
            what,
            epoch_sums=self.config.train_metrics == "batches",
        )
        if state.step != step or state.seq != self._index.keyframe_seq(step):
            raise SessionFormatError(f"{what} is labelled with another step.")
        try:
            trainer = Trainer(self.spec, self.config, self.dataset, state=state)
        except (ConfigError, ValueError, KeyError, TypeError) as err:
            raise SessionFormatError(
                f"{what} does not fit the network ({err})."
            ) from err
        if step == 0 and not self._start_checked and self.fork_of is None:
            # The first keyframe must be the initialization the seed gives.
            fresh = Trainer(self.spec, self.config, self.dataset).state()
            start = apply_initial_values(fresh.params, self.initial_values)
            same = all(
                np.array_equal(a[k], b[k])
                for a, b in zip(start, state.params, strict=True)
                for k in ("W", "b")
            )
            if not same or fresh.dropout_rng != state.dropout_rng:
                why = (
                    "The file was changed after recording or is damaged."
                    if self._recorded_here()
                    else "The file was altered, or this machine draws random "
                    "numbers differently."
                )
                msg = (
                    f"Step 0 of {self.path} does not reproduce: its keyframe is not "
                    "the initialization its seed (and any hand-set values) give. " + why
                )
                raise SessionReproducibilityError(msg)
            self._start_checked = True
        return trainer

    def _check_step(self, step: int, row: tuple[Any, ...], log: list[ev.Event]) -> None:
        if not self.verify_steps:
            return
        seq_first, n_events, status, summary = row
        problem = None
        first = log[0].seq
        count = len(log)
        if first != seq_first or count != n_events:
            problem = (
                f"it has events {first}..{first + count - 1}, the file says "
                f"{seq_first}..{seq_first + n_events - 1}"
            )
        elif status == "ok":
            done = log[-1] if isinstance(log[-1], ev.StepCompleted) else log[-2]
            assert isinstance(done, ev.StepCompleted)
            again = encode_summary(
                done.loss, done.data_loss, done.grad_norms, done.update_ratios
            )
            if again != summary:
                stored = decode_summary(summary, self.n_layers)
                problem = (
                    f"its loss and gradient norms re-executed as "
                    f"{np.frombuffer(again, '<f8').tolist()}, recorded as "
                    f"{stored.tolist()}"
                )
        if problem is None:
            return
        if self._recorded_here():
            msg = (
                f"Step {step} of {self.path} does not reproduce: {problem}. It was "
                "recorded with the same glassnet, NumPy, Python and platform as "
                "this machine has, so the file was changed after recording or is "
                "damaged. Run `glassnet verify` for the full comparison."
            )
        else:
            msg = (
                f"Step {step} of {self.path} does not reproduce on this machine: "
                f"{problem}. It was recorded with NumPy "
                f"{self.meta.get('numpy_version')} on {self.meta.get('platform')}; "
                "this machine has NumPy "
                f"{np.__version__}. Run `glassnet verify` for the full comparison."
            )
        raise SessionReproducibilityError(msg)

    def _recorded_here(self) -> bool:
        """Return True when the file was recorded with this machine's versions.

        A step that then does not reproduce was changed, not computed
        differently.
        """
        meta = self.meta
        return (
            str(meta.get("glassnet_version")) == engine.__version__
            and str(meta.get("numpy_version")) == np.__version__
            and str(meta.get("python_version")) == platform.python_version()
            and str(meta.get("platform")) == f"{platform.system()} {platform.machine()}"
        )


def open_session(path: str | Path, **kwargs: Any) -> Session:
    """Open a session file for reading (see :class:`Session`)."""
    return Session(path, **kwargs)


def _connect(path: Path) -> sqlite3.Connection:
    """Return a query-only connection after checking the file looks like SQLite."""
    if not path.is_file():
        msg = f"{path} does not exist or is not a file."
        raise SessionFormatError(msg)
    with path.open("rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        what = "empty" if not head else "not a glassnet session (not an SQLite file)"
        msg = f"{path} is {what}. Open a file written by `glassnet record` or the app."
        raise SessionFormatError(msg)
    try:
        con = sqlite3.connect(path, check_same_thread=False)
        con.execute("PRAGMA query_only = ON")
        con.execute("PRAGMA trusted_schema = OFF")
        con.execute("PRAGMA cell_size_check = ON")
    except sqlite3.DatabaseError as err:
        raise _damaged(path, err) from err
    return con


def _damaged(path: Path, err: Exception) -> SessionFormatError:
    return SessionFormatError(
        f"{path} is damaged or truncated (SQLite says: {err}). Recorded sessions "
        "survive crashes; a file cut short by copying or editing does not. Copy "
        "the original file again, or record the run again."
    )
