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

Five browser users at once still meet, now and then, a page told about a
model it was never sent (README, Limitations): that test is an expected
failure that may pass.  Five Bokeh client users at once and the cycles must
pass every time.
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

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
from load_client import DocumentCopy, ProtocolFault  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402

pytestmark = [pytest.mark.ui, pytest.mark.slow]

USERS = 5
CYCLES = 10


def _in_a_thread(coroutine: Any) -> Any:
    # A thread of its own: the browser tests before this one may leave an
    # event loop running in the main thread, where asyncio.run() refuses.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _drive(
    folder: Path, part: str, launch: dict[str, Any]
) -> tuple[LoadResult | CycleResult, dict[str, int]]:
    """Run five browser users at once, or ten cycles; return what happened."""
    n_steps = prepare_folder(folder)
    server = LoadServer(folder, folder / "serve.log")
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(**launch)
            try:
                if part == "load":
                    res: LoadResult | CycleResult = await run_load(
                        server, browser, n_steps, users=USERS, ramp=0.3, moves=2,
                        tabs=2, think=(0.05, 0.1), deadline=240.0, warm_up=False,
                    )  # fmt: skip
                else:
                    res = await run_cycles(
                        server, browser, n_steps, CYCLES, moves=1, tabs=1
                    )
            finally:
                await browser.close()
        return res, server.alive()
    finally:
        server.stop()


@pytest.mark.xfail(
    strict=False,
    reason="known race (README, Limitations): under load a page now and then "
    "gets a reference to a model it was never sent ('reference ... isn't "
    "known'); seen in 2 of 5 CI rehearsals on a busy 2-CPU machine, never on "
    "a quiet one",
)
def test_load_small_browser_users_at_once_leave_no_error_and_no_session_behind(
    tmp_path: Path, browser_type_launch_args: dict[str, Any]
) -> None:
    # The conftest's launch arguments: Debian's Chromium, or a failed test.
    load, _ = _in_a_thread(_drive(tmp_path, "load", browser_type_launch_args))
    assert isinstance(load, LoadResult)

    # Five users were connected at once, and each moved the cursor twice.
    assert load.max_connected == USERS
    assert load.errors == []
    assert sum(len(log.move_ms) for log in load.logs) == USERS * 2
    assert load.offsite == []

    # Once they had left, the server kept none of their apps.
    assert load.alive_after["app_states"] == 0, load.alive_after
    assert load.alive_after["apps"] == 0, load.alive_after
    assert load.alive_after["tabs"] == 0, load.alive_after


def test_load_small_cycles_release_every_user_s_session(
    tmp_path: Path, browser_type_launch_args: dict[str, Any]
) -> None:
    cycles, alive = _in_a_thread(_drive(tmp_path, "cycles", browser_type_launch_args))
    assert isinstance(cycles, CycleResult)

    # Ten users one after another: each one's objects released before the next.
    assert cycles.errors == []
    assert cycles.offsite == []
    assert len(cycles.rss_mb) == CYCLES
    assert cycles.not_released == []
    assert len(cycles.move_ms) == CYCLES
    assert alive["app_states"] == alive["apps"] == alive["tabs"] == 0


async def _drive_clients(folder: Path) -> tuple[LoadResult, dict[str, int]]:
    """Run five Bokeh client users at once; return what happened."""
    n_steps = prepare_folder(folder)
    server = LoadServer(folder, folder / "serve.log")
    try:
        load = await run_load(
            server, None, n_steps, users=USERS, ramp=0.3, moves=3, tabs=3,
            think=(0.05, 0.1), deadline=240.0, warm_up=False, driver="client",
        )  # fmt: skip
        return load, server.alive()
    finally:
        server.stop()


def test_load_small_with_bokeh_clients_leaves_no_error_and_no_session_behind(
    tmp_path: Path,
) -> None:
    load, alive = _in_a_thread(_drive_clients(tmp_path))

    assert load.max_connected == USERS
    assert load.errors == []
    assert sum(len(log.move_ms) for log in load.logs) == USERS * 3
    assert sum(len(log.tab_ms) for log in load.logs) == USERS * 3
    # Some moves land on a tab with a cursor mark, and the mark followed.
    assert any(f for log in load.logs for f in log.followed)
    assert load.alive_after["app_states"] == load.alive_after["apps"] == 0
    assert alive["app_states"] == alive["apps"] == alive["tabs"] == 0


def _obj(ref: str, name: str, **attributes: Any) -> dict[str, Any]:
    return {"type": "object", "name": name, "id": ref, "attributes": attributes}


def test_the_client_s_document_copy_refuses_a_reference_it_was_never_sent() -> None:
    doc = DocumentCopy()
    doc.load({"roots": [_obj("p1", "bokeh.models.Column", children=[{"id": "p2"}]),
                        _obj("p2", "Slider", value=3, title="Step")]})  # fmt: skip
    assert doc.kind == {"p1": "Column", "p2": "Slider"}
    assert doc.reach("p1") == {"p1", "p2"}

    # A patch may define an object and refer to it in the same message...
    span = _obj("p3", "Span", location=4)
    doc.patch([
        {"kind": "ModelChanged", "model": {"id": "p1"}, "attr": "children",
         "new": [{"id": "p2"}, {"id": "p3"}]},
        {"kind": "ModelChanged", "model": {"id": "p2"}, "attr": "value", "new": 4},
        {"kind": "RootAdded", "model": _obj("p9", "Div", text="x", span=span)},
    ])  # fmt: skip
    assert doc.get("p2", "value") == 4
    assert doc.reach("p1") == {"p1", "p2", "p3"}

    # ...and a buffer's id inside an array is not an object reference...
    array = {"type": "ndarray", "array": {"id": "buf-1"}, "shape": [2]}
    doc.patch([{"kind": "ModelChanged", "model": {"id": "p3"}, "attr": "x",
                "new": array}])  # fmt: skip

    # ...but an object it never defined is what a page reports as not known.
    with pytest.raises(ProtocolFault, match="reference p7 isn't known"):
        doc.patch([{"kind": "ModelChanged", "model": {"id": "p1"},
                    "attr": "children", "new": [{"id": "p7"}]}])  # fmt: skip

    # An object no root reaches is kept until BokehJS's deferred recompute...
    quick = DocumentCopy(recompute_s=0.0)
    quick.load({"roots": [_obj("p1", "Column", children=[_obj("p2", "Span")])]})
    quick.patch([{"kind": "ModelChanged", "model": {"id": "p1"},
                  "attr": "children", "new": []}])  # fmt: skip
    assert "p2" in quick.kind
    # ...which has run before the next patch: p2 is forgotten.
    with pytest.raises(ProtocolFault, match="reference p2 isn't known"):
        quick.patch([{"kind": "ModelChanged", "model": {"id": "p1"},
                      "attr": "children", "new": [{"id": "p2"}]}])  # fmt: skip
