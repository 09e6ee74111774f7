"""Run every glassnet benchmark in one go and write the results as Markdown.

Usage, from the repository root::

    .venv/bin/python benchmarks/run.py           # full run: docs/benchmarks.md
    .venv/bin/python benchmarks/run.py --quick   # smoke run, to a temp file

See benchmarks/README.md for what is measured and what each figure means.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_machine import CpuTimes, git_state, machine_info, mount_of
from bench_nets import make_nets
from bench_profile import decompose, profile_net
from bench_report import OVERHEAD_TARGET, SPEEDUP_TARGET, render
from bench_sessions import measure_long_session
from bench_throughput import measure_throughput
from bench_torch import TorchWorker

ROOT = Path(__file__).resolve().parents[1]

FULL = {
    "rounds": 7,
    "steps": 3000,
    "long_steps": 100_000,
    "requests": 1000,
    "fresh": 200,
}
QUICK = {"rounds": 3, "steps": 500, "long_steps": 10_000, "requests": 500, "fresh": 50}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run everything, write the report; return 0."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    cpu0 = CpuTimes.now()
    load: dict[str, Any] = {"before": os.getloadavg()}
    say(f"load average before: {load['before']}")
    worker = TorchWorker()
    with tempfile.TemporaryDirectory(prefix="glassnet-bench-") as tmp:
        tmpdir = Path(tmp)
        machine = machine_info(worker.info())
        nets = make_nets(args.steps)
        try:
            results = measure_throughput(nets, args.rounds, tmpdir, worker, say)
        finally:
            worker.close()
        load["mid"] = os.getloadavg()
        say(f"load average after the throughput rounds: {load['mid']}")
        long = measure_long_session(
            args.long_steps, args.requests, args.fresh, tmpdir, say
        )
        profiles = {}
        costs = {}
        for res in results:
            speedup = min(
                res.median_ratio("torch_1_thread", "engine_recorded"),
                res.median_ratio("torch_default_threads", "engine_recorded"),
            )
            overhead = res.median_ratio("engine_recorded", "engine_unrecorded")
            if speedup < SPEEDUP_TARGET or overhead > OVERHEAD_TARGET:
                say(f"net ({res.net.key}) misses a target: profiling")
                profiles[res.net.key] = profile_net(res.net, tmpdir)
                costs[res.net.key] = decompose(res.net, tmpdir)
        tmp_mount = mount_of(tmpdir)
    load["end"] = os.getloadavg()
    cpu1 = CpuTimes.now()
    load["steal"] = cpu1.steal_percent_since(cpu0)
    load["others"] = cpu1.others_cpu_since(cpu0)
    machine["git"] = git_state(ROOT)
    load["verdict"] = _verdict(load, machine["nproc"] or 1)
    say(
        f"load average at the end: {load['end']}; steal {load['steal']:.1f} %; "
        f"other processes kept {load['others']:.2f} CPUs busy on average"
    )

    command = shlex.join([".venv/bin/python", "benchmarks/run.py", *args.argv])
    page = render(
        command=command,
        quick=args.quick,
        machine=machine,
        load=load,
        tmp_mount=tmp_mount,
        rounds=args.rounds,
        results=results,
        long=long,
        profiles=profiles,
        costs=costs,
        total_s=time.perf_counter() - started,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print(page)
    say(f"wrote {args.out}")
    return 0


def say(text: str) -> None:
    """Print a progress line to stderr, so stdout carries only the report."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 rounds of 500 steps, a 10,000-step long session",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="Markdown file to write (default docs/benchmarks.md; with --quick a "
        "file in the temp directory, so a smoke run never replaces the results)",
    )
    p.add_argument("--rounds", type=int, help="timed rounds (default 7, quick 3)")
    p.add_argument("--steps", type=int, help="steps per run (default 3000, quick 500)")
    p.add_argument(
        "--long-steps",
        type=int,
        help="steps of the long session of net (a) (default 100000, quick 10000)",
    )
    p.add_argument(
        "--requests",
        type=int,
        help="random reads of each kind (default 1000, quick 500)",
    )
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.out is None:
        if args.quick:
            args.out = Path(tempfile.gettempdir()) / "glassnet-benchmarks-quick.md"
        else:
            args.out = ROOT / "docs" / "benchmarks.md"
    if args.rounds < 1 or args.steps < 25 or args.long_steps < 25:
        p.error("--rounds must be >= 1, --steps and --long-steps >= 25")
    args.argv = argv
    return args


def _verdict(load: dict[str, Any], nproc: int) -> str:
    """Say whether other work shared the machine while the benchmark ran."""
    others = load["others"]
    if others >= 0.1 * nproc or load["steal"] >= 5.0:
        return (
            f"The machine was shared: other processes kept {others:.2f} of its "
            f"{nproc} CPUs busy on average (steal {load['steal']:.1f} %). Absolute "
            "numbers are noisy; trust the per-round ratios."
        )
    return (
        f"The machine was otherwise nearly idle: other processes used {others:.2f} "
        f"of its {nproc} CPUs on average (steal {load['steal']:.1f} %)."
    )


if __name__ == "__main__":
    raise SystemExit(main())
