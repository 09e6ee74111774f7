"""Describe the machine a benchmark ran on: CPU, load, steal time, library versions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CpuTimes", "git_state", "machine_info", "mount_of"]


@dataclass(frozen=True)
class CpuTimes:
    """Hold the machine's CPU counters (``/proc/stat``) and this process's CPU time.

    ``busy``, ``idle`` and ``steal`` are in clock ticks, summed over all CPUs;
    ``own_s`` is the CPU seconds of this process and its waited-for children.
    """

    busy: int
    idle: int
    steal: int
    wall: float
    own_s: float

    @classmethod
    def now(cls) -> CpuTimes:
        """Return the counters at this moment (zeros where /proc is missing)."""
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        wall = time.monotonic()
        try:
            line = Path("/proc/stat").read_text().splitlines()[0]
        except OSError:
            return cls(0, 0, 0, wall, own)
        # cpu user nice system idle iowait irq softirq steal guest guest_nice
        v = [int(x) for x in line.split()[1:9]]
        busy = v[0] + v[1] + v[2] + v[5] + v[6]
        return cls(busy, v[3] + v[4], v[7], wall, own)

    def others_cpu_since(self, start: CpuTimes) -> float:
        """Return the average number of CPUs that other processes kept busy."""
        tick = os.sysconf("SC_CLK_TCK")
        busy_s = (self.busy - start.busy) / tick
        wall = self.wall - start.wall
        return max(0.0, busy_s - (self.own_s - start.own_s)) / wall if wall else 0.0

    def steal_percent_since(self, start: CpuTimes) -> float:
        """Return the share of CPU time stolen by the hypervisor since ``start``."""
        busy = self.busy - start.busy
        idle = self.idle - start.idle
        steal = self.steal - start.steal
        total = busy + idle + steal
        return 100.0 * steal / total if total else 0.0


def machine_info(torch_info: dict[str, Any]) -> dict[str, Any]:
    """Return what the report says about the machine and the software.

    ``torch_info`` comes from the PyTorch worker process (torch is never
    imported in the engine's process).
    """
    from threadpoolctl import threadpool_info

    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "mem_gib": mem_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_info["torch"],
        "torch_threads": torch_info["threads"],
        "torch_interop_threads": torch_info["interop_threads"],
        "blas_pools": [_pool(p) for p in threadpool_info()],
        "torch_pools": [_pool(p) for p in torch_info["pools"]],
        "env_threads": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            if k in os.environ
        },
    }


def _pool(p: dict[str, Any]) -> str:
    return (
        f"{p.get('internal_api')} {p.get('version')} "
        f"({p.get('threading_layer', '-')}, {p.get('architecture', '-')}): "
        f"{p.get('num_threads')} threads, {Path(p.get('filepath', '')).name}"
    )


def mount_of(path: Path) -> str:
    """Return ``device on mountpoint (fstype)`` for the filesystem holding ``path``."""
    path = path.resolve()
    best = ("?", "/", "?")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype = line.split()[:3]
            inside = path == Path(mnt) or Path(mnt) in path.parents
            if inside and len(mnt) >= len(best[1]):
                best = (dev, mnt, fstype)
    except OSError:
        pass
    return f"{best[0]} on {best[1]} ({best[2]})"


def git_state(root: Path) -> str:
    """Return the commit of ``root`` and any uncommitted change to the code measured."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "engine", "sessions"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = [line[3:] for line in dirty if line.strip()]
    state = "engine/ and sessions/ as committed"
    if changed:
        state = "uncommitted changes in " + ", ".join(changed)
    return f"`{head}` ({state})"
