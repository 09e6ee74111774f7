"""A small load test of the served app: users at once, then connect/disconnect cycles.

The full load benchmark is ``benchmarks/bench_load.py`` (30 users, 50 cycles,
latency and memory figures); this runs the same users on a smaller scale and
checks only what must always hold: no error anywhere, and every user's app
objects released by the server once they have left.  Nothing here is timed.

The server discards a session no browser joined within a second, so under
load some pages connect to a session made anew for their websocket; such a
page once asked Panel's CDN for its stylesheets (unreachable offline), and a
file name change could reach a page before the figure it names, losing the
rest of that update.  Both are checked here: no request leaves the server.
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ui.served import CHROMIUM, CHROMIUM_ARGS

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from bench_load import (  # noqa: E402
    CycleResult,
    LoadResult,
    LoadServer,
    prepare_folder,
    run_cycles,
    run_load,
)
from playwright.async_api import async_playwright  # noqa: E402

pytestmark = [pytest.mark.ui, pytest.mark.slow]

USERS = 5
CYCLES = 10


async def _drive(folder: Path) -> tuple[LoadResult, CycleResult, dict[str, int]]:
    """Run five users at once, then ten cycles, on one server; return what happened."""
    n_steps = prepare_folder(folder)
    server = LoadServer(folder, folder / "serve.log")
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
            try:
                load = await run_load(
                    server, browser, n_steps, users=USERS, ramp=0.3, moves=2,
                    tabs=2, think=(0.05, 0.1), deadline=240.0, warm_up=False,
                )  # fmt: skip
                cycles = await run_cycles(
                    server, browser, n_steps, CYCLES, moves=1, tabs=1
                )
            finally:
                await browser.close()
        return load, cycles, server.alive()
    finally:
        server.stop()


def test_load_small_users_and_cycles_leave_no_error_and_no_session_behind(
    tmp_path: Path,
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No browser at {CHROMIUM}: install Debian's chromium "
            "(apt-get install chromium) or set GLASSNET_CHROMIUM."
        )
    # A thread of its own: the browser tests before this one may leave an
    # event loop running in the main thread, where asyncio.run() refuses.
    with ThreadPoolExecutor(max_workers=1) as pool:
        load, cycles, alive = pool.submit(asyncio.run, _drive(tmp_path)).result()

    # Five users were connected at once, and each moved the cursor twice.
    assert load.max_connected == USERS
    assert load.errors == []
    assert sum(len(log.move_ms) for log in load.logs) == USERS * 2
    assert load.offsite == []

    # Once they had left, the server kept none of their apps.
    assert load.alive_after["app_states"] == 0, load.alive_after
    assert load.alive_after["apps"] == 0, load.alive_after
    assert load.alive_after["tabs"] == 0, load.alive_after

    # Ten users one after another: each one's objects released before the next.
    assert cycles.errors == []
    assert cycles.offsite == []
    assert len(cycles.rss_mb) == CYCLES
    assert cycles.not_released == []
    assert len(cycles.move_ms) == CYCLES
    assert alive["app_states"] == alive["apps"] == alive["tabs"] == 0
