"""Crash safety: a recorder killed with SIGKILL leaves a readable, honest file.

How the loss is measured
------------------------
A child process (``_record_child.py``) records a long run.  Right after the
recorder's ``before_step`` hook for step ``s`` returns, the child appends
``"s wall cpu"`` to a side file: step ``s - 1`` was then finished and handed to
the recorder, and ``cpu`` is the child's ``time.process_time()``.  The parent
kills the child with SIGKILL at a random moment and reaps it with
``os.wait4``, which reports the CPU time the child had used when it died
(``ru_utime + ru_stime``, the same clock as ``process_time``).

The promise is that a killed recorder loses at most the last ~0.1 s of
*training*, so every step whose line has ``cpu < cpu_at_death - 0.1`` must be
in the file: ``n_recorded >= s`` for the newest such line.  The file cannot
hold more steps than were handed over either: ``n_recorded <= s + 1`` for the
last line (``+ 1``: the kill may fall between a commit and its line).

CPU time, not wall time, is what makes this sound on a shared machine: a
child that is descheduled (other tests, other users) or blocked on a disk
flush trains nothing while the wall clock runs, so "lost at most what was
trained in the last 0.1 s of wall time" could fail with a correct recorder.
While it runs, the child's CPU clock advances no faster than the wall clock
its recorder uses to decide when to commit (the child is single-threaded:
BLAS threads are turned off in its environment), so a commit is due at least
every 0.05 s of its CPU time.  Each step takes well under a millisecond, so
the bound tests the commit cadence, not the length of a step.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from engine import Trainer
from engine import events as ev
from sessions import Session, verify

CHILD = Path(__file__).with_name("_record_child.py")
LOSS_WINDOW = 0.1
"""Seconds of training a killed recorder may lose."""

_ONE_THREAD = {
    name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
}


def _child_module() -> ModuleType:
    """Import the child script by path (``tests`` is not a package)."""
    spec = importlib.util.spec_from_file_location("_record_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- running and killing a recording child -------------------------------------


@dataclass
class Child:
    """A recording child process and what its death looked like."""

    proc: subprocess.Popen[str]
    path: Path
    side: Path
    cpu_at_death: float = 0.0
    wall_at_kill: float = 0.0
    returncode: int | None = None
    stderr: str = ""


def start_child(path: Path, side: Path, keyframe_interval: int) -> Child:
    """Start a child that records into ``path`` and notes its steps in ``side``."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), str(side), str(keyframe_interval)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **_ONE_THREAD},
    )
    return Child(proc, path, side)


def wait_for_lines(child: Child, n: int, timeout: float) -> None:
    """Wait until the child has noted ``n`` step starts, or fail."""
    deadline = time.monotonic() + timeout
    while not (child.side.exists() and child.side.read_bytes().count(b"\n") >= n):
        if child.proc.poll() is not None:
            _, err = child.proc.communicate()
            pytest.fail(
                f"the recording child exited with {child.proc.returncode}:\n{err}"
            )
        if time.monotonic() > deadline:
            kill(child)
            pytest.fail(
                f"the recording child noted fewer than {n} steps in {timeout} s"
            )
        time.sleep(0.002)


def kill(child: Child) -> None:
    """SIGKILL the child and reap it, noting its CPU time at death."""
    proc = child.proc
    child.wall_at_kill = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    child.returncode = proc.returncode
    child.cpu_at_death = usage.ru_utime + usage.ru_stime
    assert proc.stderr is not None
    child.stderr = proc.stderr.read()
    proc.stderr.close()


def step_starts(side: Path) -> list[tuple[int, float, float]]:
    """Return the ``(step, wall, cpu)`` lines the child wrote in full."""
    out = []
    for line in side.read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            step, wall, cpu = line.split()
            out.append((int(step), float(wall), float(cpu)))
    return out


# -- comparing with the run computed here --------------------------------------


def same_value(a: Any, b: Any) -> bool:
    """Return True when two event field values are equal bit for bit."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and all(same_value(a[k], b[k]) for k in a)
        )
    if isinstance(a, list | tuple):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, float) and isinstance(b, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    return type(a) is type(b) and a == b


def same_events(xs: list[ev.Event], ys: list[ev.Event]) -> bool:
    """Return True when two event lists match field by field, bit for bit."""
    return len(xs) == len(ys) and all(
        type(x) is type(y)
        and all(
            same_value(getattr(x, f.name), getattr(y, f.name))
            for f in dataclasses.fields(x)
        )
        for x, y in zip(xs, ys, strict=True)
    )


def live_steps(module: ModuleType, steps: list[int]) -> dict[int, list[ev.Event]]:
    """Return the events of each of ``steps`` of the child's run, computed here."""
    spec, config, data = module.build()
    trainer = Trainer(spec, config, data)
    out: dict[int, list[ev.Event]] = {}
    log: list[ev.Event] = []
    trainer.sink = log.append if 0 in steps else None
    trainer.begin()  # numbers the opening events even when nobody listens
    for step in range(max(steps) + 1):
        trainer.sink = log.append if step in steps else None
        trainer.train_step()
        if step in steps:
            out[step] = log[:]
            log.clear()
    return out


# -- the checks ------------------------------------------------------------------


@dataclass
class Trial:
    """One child, killed ``delay`` seconds (wall) after its first step began."""

    index: int
    delay: float
    keyframe_interval: int
    path: Path
    side: Path


def run_trial(trial: Trial) -> tuple[Trial, Child]:
    """Start a child, kill it ``trial.delay`` s after its first step began."""
    child = start_child(trial.path, trial.side, trial.keyframe_interval)
    wait_for_lines(child, 1, timeout=30)
    time.sleep(trial.delay)
    kill(child)
    return trial, child


def check_killed_file(trial: Trial, child: Child, module: ModuleType) -> int:
    """Check everything a killed recording must offer; return the steps it holds."""
    where = f"trial {trial.index} (kill {trial.delay:.3f} s after step 0 began)"
    assert child.returncode == -signal.SIGKILL, f"{where}: {child.stderr}"
    lines = step_starts(trial.side)
    assert [s for s, _, _ in lines] == list(range(len(lines))), where

    with Session(trial.path) as session:
        assert session.status == "incomplete", where
        assert session.end is None
        n = session.n_recorded
        assert session.last_step == n - 1, where

        # Nothing finished more than LOSS_WINDOW of training before death is lost.
        old = [s for s, _, cpu in lines if cpu < child.cpu_at_death - LOSS_WINDOW]
        must_hold = max(old, default=0)
        last_line = lines[-1][0]
        _, wall0, cpu0 = lines[0]
        assert n >= must_hold, (
            f"{where}: the file holds {n} steps, but steps 0..{must_hold - 1} were "
            f"finished more than {LOSS_WINDOW} s of CPU time before the child died "
            f"({last_line - n} lost). Since step 0 began, the child died at CPU "
            f"{child.cpu_at_death - cpu0:.4f} s, killed at wall "
            f"{child.wall_at_kill - wall0:.4f} s; steps began at (wall, cpu) "
            + ", ".join(
                f"{s}: ({w - wall0:.4f}, {c - cpu0:.4f})"
                for s, w, c in lines
                if s >= n - 1
            )
        )
        assert n <= last_line + 1, where

        # Every stored step rebuilds (each checked against its summary), and
        # together they are one gapless log.
        seq = 0
        for step in range(n):
            events = session.step_events(step)
            assert [e.seq for e in events] == list(range(seq, seq + len(events)))
            assert {e.step for e in events} == {step}
            seq += len(events)
        assert seq == session.n_events
        if n:
            newest = session.step_events(n - 1)
            assert same_events(newest, live_steps(module, [n - 1])[n - 1]), where
    report = verify(trial.path)
    assert report.ok, f"{where}: {report.first_difference}"
    assert report.steps == n
    return n


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_killed_recorder_loses_at_most_the_last_tenth_of_a_second(
    tmp_path: Path,
) -> None:
    module = _child_module()
    rng = random.Random(20240611)
    trials = []
    for i in range(20):
        # Two kills right after the first step began (nothing stored yet),
        # then random moments in the first 0.5 s of training.
        delay = 0.0 if i < 2 else rng.uniform(0.0, 0.5)
        interval = (1, 7, 10, 25)[i % 4]
        path, side = tmp_path / f"{i}.session", tmp_path / f"{i}.txt"
        trials.append(Trial(i, delay, interval, path, side))

    # One child at a time trains and is killed in a worker thread while this
    # thread checks the file of the previous one.
    held = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        for trial, child in pool.map(run_trial, trials):
            held.append(check_killed_file(trial, child, module))
    # Most kills came after many steps were stored, not only at the start.
    assert sum(n > 100 for n in held) >= 10, held


@pytest.mark.timeout(60)
def test_a_reader_follows_a_recording_still_running_in_another_process(
    tmp_path: Path,
) -> None:
    module = _child_module()
    child = start_child(tmp_path / "live.session", tmp_path / "live.txt", 10)
    try:
        # Some thousand steps: past the first commits (every 0.05 s).
        wait_for_lines(child, 1500, timeout=30)
        with Session(child.path) as session:
            assert session.status == "incomplete"
            first = session.n_recorded
            assert first >= 1

            # The writer keeps going while the file is open for reading.
            noted = len(step_starts(child.side))
            wait_for_lines(child, noted + 300, timeout=30)
            assert session.n_recorded == first
            # 300 fast steps may all fall between two commits (0.05 s apart):
            # refresh until the next commit shows, as the app's live view does.
            deadline = time.monotonic() + 10
            session.refresh()
            while session.n_recorded == first and time.monotonic() < deadline:
                time.sleep(0.02)
                session.refresh()
            later = session.n_recorded
            assert later > first
            assert session.status == "incomplete"

            # Any step can be read, the newest included.
            steps = sorted({0, first - 1, first, (first + later) // 2, later - 1})
            read = {step: session.step_events(step) for step in steps}
            with pytest.raises(IndexError):
                session.step_events(later + 10_000)
    finally:
        if child.returncode is None:
            kill(child)
    assert child.returncode == -signal.SIGKILL

    # What was read while the child wrote is the run itself, bit for bit.
    live = live_steps(module, steps)
    for step in steps:
        assert same_events(read[step], live[step]), step
    assert verify(child.path).ok
