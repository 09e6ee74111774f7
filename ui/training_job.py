"""Run one training job in a background thread, recording it into a session file.

The job knows nothing of Panel: it trains, records and keeps a few plain
attributes (``status``, ``step``, ``total_steps``, ``message``) that the tab
reads from its periodic callback on the server thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from pathlib import Path
from typing import Any

from engine.config import TrainingConfig
from engine.data import Dataset
from engine.errors import ConfigError
from engine.network import NetworkSpec
from engine.trainer import Trainer
from sessions import Session, SessionError, record
from sessions.fork import fork, fork_start
from sessions.initial import normalize_initial_values

__all__ = ["ForkJob", "TrainingJob", "session_path"]

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def session_path(folder: str | Path, title: str) -> Path:
    """Return a new, unused session file path in ``folder`` named after ``title``.

    The name keeps only letters, digits, ``-`` and ``_`` of the title (at most
    40), adds the UTC time and, if needed, a counter, so it never overwrites a
    file and never leaves ``folder``.
    """
    folder = Path(folder)
    stem = _UNSAFE.sub("-", title).strip("-")[:40] or "run"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        suffix = f"-{n}" if n else ""
        path = folder / f"{stem}-{stamp}{suffix}.session"
        if not path.exists() and not Path(f"{path}-wal").exists():
            return path
    msg = f"Too many runs named {stem!r} this second; wait a second and retry."
    raise SessionError(msg)


class TrainingJob:
    """Train and record one run in a daemon thread; stop it on request.

    Parameters
    ----------
    spec, config, data
        What to train.  They are checked now (by building a trainer), so bad
        settings raise :class:`ConfigError` before any thread or file exists.
    path : Path
        The session file to create.
    title, description : str
        Stored in the session's meta.
    initial_values : dict or None
        Hand-set initial values ``{(layer, "W" or "b", index): value}``.

    Attributes
    ----------
    status : str
        ``ready``, ``running``, then ``completed``, ``stopped``, ``diverged``
        or ``failed``.
    step, total_steps : int
        Steps done so far and planned.
    message : str
        Why the run failed, in plain words (empty otherwise).
    """

    def __init__(
        self,
        spec: NetworkSpec,
        config: TrainingConfig,
        data: Dataset,
        path: str | Path,
        *,
        title: str = "",
        description: str = "",
        initial_values: dict[Any, float] | None = None,
    ) -> None:
        # Building a trainer checks that network, loss and data fit together.
        probe = Trainer(spec, config, data)
        normalize_initial_values(initial_values, spec)
        self._setup(spec, config, data, path, probe.total_steps, title, description)
        self.initial_values = dict(initial_values or {})

    def _setup(
        self,
        spec: NetworkSpec,
        config: TrainingConfig,
        data: Dataset,
        path: str | Path,
        total_steps: int,
        title: str,
        description: str,
    ) -> None:
        self.spec, self.config, self.data = spec, config, data
        self.path = Path(path)
        self.title = title
        self.description = description
        self.initial_values: dict[Any, float] = {}
        self.total_steps = total_steps
        self.step = 0
        self.status = "ready"
        self.message = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Return True while the thread trains."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def done(self) -> bool:
        """Return True once the run ended, whatever the reason."""
        return self.status in ("completed", "stopped", "diverged", "failed")

    def start(self) -> None:
        """Start training in a new daemon thread."""
        if self._thread is not None:
            msg = "This job was already started; make a new job for a new run."
            raise RuntimeError(msg)
        self.status = "running"
        self._thread = threading.Thread(
            target=self._run, name=f"glassnet-train-{self.path.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the run to stop before its next step; what ran stays recorded."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (at most ``timeout`` seconds)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _progress(self, trainer: Trainer) -> None:
        self.step = trainer.step_index

    def _record(self) -> str:
        """Train and record the run; return why it ended."""
        return record(
            self.spec,
            self.config,
            self.data,
            self.path,
            title=self.title,
            description=self.description,
            should_stop=self._stop.is_set,
            progress=self._progress,
            initial_values=self.initial_values,
        )

    def _run(self) -> None:
        try:
            reason = self._record()
        except (ConfigError, SessionError) as err:
            self.message = str(err)
            self.status = "failed"
        except Exception as err:  # noqa: BLE001 - a thread must not die silently
            logger.exception("Training run %s failed", self.path)
            self.message = f"The run stopped on an unexpected error: {err}."
            self.status = "failed"
        else:
            self.status = reason


class ForkJob(TrainingJob):
    """Record a fork of a session (see :func:`sessions.fork.fork`) in a thread.

    The fork is checked now (``fork_start``), so an impossible one raises
    :class:`ConfigError` before any thread or file exists.
    """

    def __init__(
        self,
        parent: Session,
        step: int,
        path: str | Path,
        *,
        changes: dict[str, Any] | None = None,
        dropout: list[float] | None = None,
        edits: dict[Any, float] | None = None,
        title: str = "",
    ) -> None:
        spec, config, start, _ = fork_start(parent, step, changes, dropout, edits)
        total = Trainer(spec, config, parent.dataset, state=start).total_steps
        self._setup(spec, config, parent.dataset, path, total, title, "")
        self.parent_path = parent.path
        self.fork_step = step
        self.changes = dict(changes or {})
        self.dropout = dropout
        self.edits = dict(edits or {})

    def _record(self) -> str:
        with Session(self.parent_path) as parent:
            return fork(
                parent,
                self.fork_step,
                self.path,
                changes=self.changes,
                dropout=self.dropout,
                edits=self.edits,
                title=self.title,
                should_stop=self._stop.is_set,
                progress=self._progress,
            )
