"""Profile the recorded and the unrecorded engine with cProfile; keep the top."""

from __future__ import annotations

import cProfile
import gc
import pstats
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_nets import Net, run_recorded, run_unrecorded

from engine import Trainer
from engine import events as ev
from sessions import DEFAULT_KEYFRAME_INTERVAL, Recorder, record

__all__ = ["DECOMPOSITION", "Profile", "decompose", "profile_net"]

DECOMPOSITION = (
    ("no sink (`sink=None`)", "unrecorded"),
    ("a sink that wants only `step_completed` (does nothing)", "summaries"),
    ("a sink that wants what the recorder wants (does nothing)", "wants"),
    ("`record()` with no keyframe after step 0", "no_keyframes"),
    ("`record()`, default (keyframe every 10 steps)", "record"),
    ("`record()` into tmpfs (`/dev/shm`), default", "record_tmpfs"),
)
"""Rows of the recording-cost table: each adds one part of recording."""

_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Profile:
    """The top functions by own time of one profiled run."""

    what: str
    steps: int
    wall_s: float
    total_tt: float
    rows: list[tuple[int, float, float, str]]
    """(ncalls, tottime s, cumtime s, function), by tottime, largest first."""


def profile_net(net: Net, tmpdir: Path, top: int = 20) -> list[Profile]:
    """Return profiles of one recorded and one unrecorded run of ``net``."""
    out = []
    for what in ("engine_recorded", "engine_unrecorded"):
        path = tmpdir / f"profile-{net.key}.session"
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        if what == "engine_recorded":
            _, steps = run_recorded(net, path)
        else:
            _, steps = run_unrecorded(net)
        prof.disable()
        wall = time.perf_counter() - t0
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        stats = pstats.Stats(prof)
        entries = sorted(
            stats.stats.items(),  # type: ignore[attr-defined]
            key=lambda kv: kv[1][2],
            reverse=True,
        )
        total_tt = sum(v[2] for _, v in entries)
        rows = [(nc, tt, ct, _name(func)) for func, (_, nc, tt, ct, _) in entries[:top]]
        out.append(Profile(what, steps, wall, total_tt, rows))
    return out


def decompose(net: Net, tmpdir: Path, reps: int = 5) -> dict[str, list[float]]:
    """Return seconds per step of each row of :data:`DECOMPOSITION`, per repetition.

    The repetitions are interleaved (every row once, then again), like the rounds.
    """
    shm = Path("/dev/shm")
    fast_dir = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmpdir
    out: dict[str, list[float]] = {key: [] for _, key in DECOMPOSITION}
    try:
        for _rep in range(reps + 1):
            for _, key in DECOMPOSITION:
                gc.collect()
                seconds = _decomposition_row(key, net, tmpdir, fast_dir)
                out[key].append(seconds / net.steps)
    finally:
        if fast_dir != tmpdir:
            for p in fast_dir.iterdir():
                p.unlink()
            fast_dir.rmdir()
    # The first repetition was a warm-up.
    return {key: values[1:] for key, values in out.items()}


class _Null:
    """A sink that takes the kinds in ``wants`` and throws them away."""

    def __init__(self, wants: frozenset[str]) -> None:
        self.wants = wants

    def __call__(self, event: ev.Event) -> None:
        pass


def _decomposition_row(key: str, net: Net, tmpdir: Path, fast_dir: Path) -> float:
    if key == "unrecorded":
        return run_unrecorded(net)[0]
    if key in ("summaries", "wants"):
        wants = frozenset({"step_completed"}) if key == "summaries" else Recorder.wants
        t0 = time.perf_counter()
        Trainer(net.spec, net.config, net.data, sink=_Null(wants)).run()
        return time.perf_counter() - t0
    path = (fast_dir if key == "record_tmpfs" else tmpdir) / "decompose.session"
    interval = net.steps + 1 if key == "no_keyframes" else DEFAULT_KEYFRAME_INTERVAL
    t0 = time.perf_counter()
    record(net.spec, net.config, net.data, path, keyframe_interval=interval)
    seconds = time.perf_counter() - t0
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return seconds


def median_us(values: list[float]) -> float:
    """Return the median of seconds-per-step values, in microseconds."""
    return 1e6 * statistics.median(values)


def _name(func: tuple[str, int, str]) -> str:
    """Return ``path:line(function)`` with paths relative to the repository."""
    file, line, name = func
    if file == "~":
        return name
    p = Path(file)
    try:
        file = str(p.resolve().relative_to(_ROOT))
    except ValueError:
        parts = p.parts
        file = "/".join(parts[-2:]) if len(parts) > 1 else file
    return f"{file}:{line}({name})"
