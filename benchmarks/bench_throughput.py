"""Time every variant of every net in interleaved rounds; keep per-round times."""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_nets import (
    VARIANTS,
    Net,
    run_all_events,
    run_recorded,
    run_unrecorded,
    torch_job,
)
from bench_sessions import file_stats
from bench_torch import TorchWorker

from sessions import Recorder

__all__ = ["NetResult", "measure_throughput"]


@dataclass
class NetResult:
    """Per-round seconds per step of each variant of one net, and its session."""

    net: Net
    steps: int
    sec_per_step: dict[str, list[float]] = field(default_factory=dict)
    session: dict[str, Any] = field(default_factory=dict)
    events_per_step: float = 0.0
    built_by_recorder_per_step: float = 0.0
    torch_loss_rel_diff: float = 0.0

    def steps_per_s(self, variant: str) -> list[float]:
        """Return steps per second of ``variant`` in each round."""
        return [1.0 / s for s in self.sec_per_step[variant]]

    def ratios(self, slower: str, faster: str) -> list[float]:
        """Return, per round, time per step of ``slower`` / time of ``faster``."""
        a, b = self.sec_per_step[slower], self.sec_per_step[faster]
        return [x / y for x, y in zip(a, b, strict=True)]

    def median_ratio(self, slower: str, faster: str) -> float:
        """Return the median over rounds of :meth:`ratios`."""
        return statistics.median(self.ratios(slower, faster))


def measure_throughput(
    nets: list[Net],
    rounds: int,
    tmpdir: Path,
    worker: TorchWorker,
    say: Callable[[str], object] = print,
) -> list[NetResult]:
    """Run ``rounds`` timed rounds (after one warm-up round) of every variant.

    Each round runs every variant of every net once; the order of the variants
    rotates from round to round so that none always runs first or last.
    PyTorch runs in ``worker``, a process of its own.
    """
    results = [NetResult(net, net.steps) for net in nets]
    for res in results:
        worker.prepare(torch_job(res.net))
        res.torch_loss_rel_diff = worker.check(res.net.key)
        for v in VARIANTS:
            res.sec_per_step[v] = []

    for r in range(rounds + 1):
        warm_up = r == 0
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for res in results:
            for variant in order:
                path = tmpdir / f"{res.net.key}-round{r}.session"
                seconds, steps = _run_variant(variant, res, worker, path)
                if not warm_up:
                    res.sec_per_step[variant].append(seconds / steps)
                if path.exists():
                    if r == rounds:
                        res.session = file_stats(path)
                    _remove_session(path)
            if not warm_up:
                line = ", ".join(
                    f"{v} {1 / res.sec_per_step[v][-1]:,.0f}" for v in VARIANTS
                )
                say(f"round {r}/{rounds} net ({res.net.key}) steps/s: {line}")
        if warm_up:
            say("warm-up round done")
    return results


def _run_variant(
    variant: str, res: NetResult, worker: TorchWorker, path: Path
) -> tuple[float, int]:
    gc.collect()
    net = res.net
    if variant == "engine_recorded":
        return run_recorded(net, path)
    if variant == "engine_recorded_blas1":
        return run_recorded(net, path, blas_threads=1)
    if variant == "engine_unrecorded":
        return run_unrecorded(net)
    if variant == "engine_all_events":
        seconds, steps, log = run_all_events(net)
        res.events_per_step = len(log) / steps
        wanted = sum(1 for e in log if e.kind in Recorder.wants)
        res.built_by_recorder_per_step = wanted / steps
        del log
        return seconds, steps
    if variant == "torch_1_thread":
        return worker.run(net.key, 1)
    assert variant == "torch_default_threads"
    return worker.run(net.key, None)


def _remove_session(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
