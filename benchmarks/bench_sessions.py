"""Measure session files: what their bytes hold, and a long run's read latencies."""

from __future__ import annotations

import os
import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_nets import net_a

from sessions import Session, record, verify

__all__ = ["LongSession", "file_stats", "measure_long_session"]


def file_stats(path: Path) -> dict[str, Any]:
    """Return the size of a closed session file and what its rows hold.

    The row sizes are payload bytes (``length()`` of the blobs and text); the
    file is larger by SQLite's page and B-tree overhead.
    """
    size = path.stat().st_size
    wal = Path(f"{path}-wal")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        q = con.execute
        n_steps, summary_bytes = q(
            "SELECT count(*), sum(length(summary)) FROM steps"
        ).fetchone()
        n_key, key_bytes = q(
            "SELECT count(*), sum(length(state)) FROM keyframes"
        ).fetchone()
        (dataset_bytes,) = q("SELECT sum(length(bundle)) FROM arrays").fetchone()
        (meta_bytes,) = q("SELECT sum(length(value)) FROM meta").fetchone()
        (n_epochs,) = q("SELECT count(*) FROM epochs").fetchone()
        (n_events,) = q(
            "SELECT seq_first + n_events FROM steps ORDER BY step DESC LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    return {
        "size": size,
        "wal_size": wal.stat().st_size if wal.exists() else 0,
        "steps": n_steps,
        # The session's last event (session_ended) follows the last step's events.
        "events": n_events + 1,
        "epochs": n_epochs,
        "keyframes": n_key,
        "keyframe_bytes": key_bytes,
        "summary_bytes": summary_bytes,
        "dataset_bytes": dataset_bytes,
        "meta_bytes": meta_bytes,
    }


@dataclass
class LongSession:
    """Results of the long recording of net (a) and of reading it back."""

    steps: int
    record_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    first_read_ms: float = 0.0
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    cache_hits: dict[str, int] = field(default_factory=dict)
    series_ms: list[float] = field(default_factory=list)
    series_rows: int = 0
    verify_s: float = 0.0
    verify_ok: bool = False
    verify_checked: int = 0


def measure_long_session(
    steps: int,
    n_requests: int,
    n_fresh: int,
    tmpdir: Path,
    say: Callable[[str], object] = print,
    seed: int = 12345,
) -> LongSession:
    """Record ``steps`` steps of net (a), then time random reads, series, verify."""
    net = net_a(steps)
    out = LongSession(net.steps)
    path = tmpdir / "long.session"

    # Record the whole run (the clock includes the final checkpoint and close).
    t0 = time.perf_counter()
    record(net.spec, net.config, net.data, path)
    out.record_s = time.perf_counter() - t0
    out.stats = file_stats(path)
    say(
        f"long session: {out.steps:,} steps recorded in {out.record_s:.1f} s, "
        f"{out.stats['size'] / 1e6:.1f} MB"
    )

    rng = np.random.default_rng(seed)
    with Session(path) as session:
        n_steps, n_events = session.n_steps, session.n_events

        # Opening read: loads the dataset and checks its hash.
        t0 = time.perf_counter()
        session.step_events(n_steps // 2)
        out.first_read_ms = 1e3 * (time.perf_counter() - t0)

        # Warm-up, then random steps and random events on one open session.
        for s in rng.integers(0, n_steps, 20):
            session.event(session.n_events // 2)
            session.step_events(int(s))
        req_steps = [int(s) for s in rng.integers(0, n_steps, n_requests)]
        out.latencies_ms["step_events"] = _time_each(session.step_events, req_steps)
        out.cache_hits["step_events"] = _cache_hits(
            req_steps, session.keyframe_interval
        )
        req_seqs = [int(s) for s in rng.integers(0, n_events, n_requests)]
        out.latencies_ms["event"] = _time_each(session.event, req_seqs)
        out.cache_hits["event"] = _cache_hits(
            [session.step_of(s) for s in req_seqs], session.keyframe_interval
        )

        # Whole-run series.
        for _ in range(5):
            t0 = time.perf_counter()
            series = session.series()
            out.series_ms.append(1e3 * (time.perf_counter() - t0))
        out.series_rows = len(series.step)
    say("long session: random reads done")

    # A fresh Session for every request: open + read one step.
    fresh_steps = [int(s) for s in rng.integers(0, n_steps, n_fresh)]
    out.latencies_ms["fresh_open_step"] = _time_each(
        lambda s: _open_and_read(path, s, drop_cache=False), fresh_steps
    )
    # The same, after asking the kernel to drop the file's cached pages.
    out.latencies_ms["cold_open_step"] = [
        _open_and_read(path, s, drop_cache=True) for s in fresh_steps
    ]

    t0 = time.perf_counter()
    report = verify(path)
    out.verify_s = time.perf_counter() - t0
    out.verify_ok = report.ok
    out.verify_checked = report.checked
    verdict = "OK" if report.ok else "FAILED"
    say(f"long session: verify {verdict} in {out.verify_s:.1f} s")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    """Return p50, p95, max and mean of ``values``."""
    a = np.asarray(values)
    return {
        "n": len(values),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
        "mean": statistics.fmean(values),
    }


def _time_each(fn: Callable[[int], object], args: list[int]) -> list[float]:
    """Return the milliseconds of each call ``fn(arg)``."""
    out = []
    for a in args:
        t0 = time.perf_counter()
        fn(a)
        out.append(1e3 * (time.perf_counter() - t0))
    return out


def _cache_hits(steps: list[int], interval: int) -> int:
    """Count requests the Session's one-trainer cache could serve from the last one.

    After reading step s the session keeps a trainer at step s + 1 and reuses it
    for a step in [s + 1, s + interval].
    """
    return sum(
        1
        for prev, s in zip(steps, steps[1:], strict=False)
        if prev < s <= prev + interval
    )


def _open_and_read(path: Path, step: int, *, drop_cache: bool) -> float:
    """Return the milliseconds to open ``path`` and read every event of ``step``."""
    if drop_cache:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    t0 = time.perf_counter()
    with Session(path) as session:
        session.step_events(step)
    return 1e3 * (time.perf_counter() - t0)
