"""Load-test the served app: concurrent browser users, then connect/disconnect cycles.

Usage, from the repository root::

    .venv/bin/python benchmarks/bench_load.py          # docs/benchmarks-load.md
    .venv/bin/python benchmarks/bench_load.py --quick  # smoke run, to a temp file

Two parts, both against ``panel serve`` of the app on the demo session, on a
loopback port:

1. load: ``--users`` users (30) connect one per ``--ramp`` seconds; each opens
   the app, switches tabs and moves the step slider with think time between
   moves, stays until every user is connected, then leaves.  With ``--driver
   client`` (the default) every user is a Bokeh client session
   (``load_client.py``): it loads the app's page, joins its session over the
   websocket and applies the server's patches to a copy of the document, so
   the machine's CPUs go to the server, as in a class whose students bring
   their own computers.  With ``--driver browser`` every user is a context of
   one headless Chromium (Playwright).  A cursor move is timed from setting
   the slider's Bokeh model until the step box and the visible tab's cursor
   marks show the new step (in the page: at an animation frame).  The
   server's memory is sampled throughout.
2. leak check (always in Chromium): ``--cycles`` (50) times one user
   connects, moves and leaves; after each cycle the benchmark waits until the
   server has released the user's objects and reads the server's memory.

Exit status 1, with the reason on stderr, when any error happened, a user's
objects were not released, or memory did not return to within
``--tolerance`` MB of its baseline; 0 otherwise.  This is a benchmark, not a
test: pytest never collects it (tests/ui/test_load_small.py runs a small version).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import shlex
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_app import N_TABS, PAGE_HELPERS, _table, _ui_state, _verdict, _versions
from bench_machine import CpuTimes, git_state, machine_info
from bench_sessions import percentiles
from load_client import ClientUser, Student
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from ui.served import CHROMIUM, CHROMIUM_ARGS, AppServer

ROOT = Path(__file__).resolve().parents[1]
DEMO = "demo.session"
PROBE_ENV = "GLASSNET_LOAD_PROBE"
LIFETIME_MS = 1000
"""``--unused-session-lifetime``: a session is discarded this long after its
last websocket closed (Bokeh's default is 15 s)."""
CHECK_MS = 500
"""``--check-unused-sessions``: how often the server looks for such sessions."""
MOVE_TIMEOUT_MS = 30_000
"""A cursor move not shown within this time counts as an error."""
OPEN_TIMEOUT_MS = 300_000
"""Opening the app (page, websocket, models) may take this long under load."""

FULL = {
    "users": 30,
    "ramp": 4.0,
    "moves": 12,
    "tabs": 4,
    "think": (0.5, 2.0),
    "cycles": 50,
    "cycle_moves": 3,
    "deadline": 900.0,
    "driver": "client",
    "rounds": 3,
}
QUICK = {
    "users": 5,
    "ramp": 0.5,
    "moves": 4,
    "tabs": 2,
    "think": (0.2, 0.6),
    "cycles": 8,
    "cycle_moves": 2,
    "deadline": 240.0,
    "driver": "client",
    "rounds": 1,
}

# ``ui/app.py`` run for each session, as ``panel serve ui/app.py`` runs it, plus
# a probe for the benchmark: a request with ``?probe=1`` builds no app; it
# collects garbage, counts the app's objects still alive in the server and
# writes the counts to the file named by GLASSNET_LOAD_PROBE (``probe=trim``
# also hands freed heap memory back to the system first, so that RSS shows
# what is still in use).  ``App`` is counted by name: each session defines
# its own class when ui/app.py runs for it.
PROBE_APP = """import ctypes
import gc
import json
import os
import runpy
import sys

import panel as pn
from bokeh.document import Document
from bokeh.model import Model
from bokeh.server.session import ServerSession

from ui.served import ROOT
from ui.state import AppState
from ui.tabs.base import Tab

probe = pn.state.session_args.get("probe")
if probe:
    gc.collect()
    if probe[0] == b"trim":
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    alive = dict.fromkeys(
        ("app_states", "apps", "tabs", "server_sessions", "documents", "models"), 0
    )
    for obj in gc.get_objects():
        alive["app_states"] += isinstance(obj, AppState)
        alive["apps"] += type(obj).__qualname__ == "App"
        alive["tabs"] += isinstance(obj, Tab)
        alive["server_sessions"] += isinstance(obj, ServerSession)
        alive["documents"] += isinstance(obj, Document)
        alive["models"] += isinstance(obj, Model)
    alive["python_objects"] = len(gc.get_objects())
    alive["python_blocks"] = sys.getallocatedblocks()
    path = os.environ["GLASSNET_LOAD_PROBE"]
    with open(path + ".part", "w", encoding="utf-8") as f:
        json.dump(alive, f)
    os.replace(path + ".part", path)
    pn.pane.Str("probe").servable()
else:
    runpy.run_path(str(ROOT / "ui" / "app.py"), run_name=__name__)
"""

# Move the step slider to ``step`` and resolve to [ms, follows] once the step
# box shows the step and, if the visible tab showed the old step in a cursor
# mark (a Span at the step, or a text "Step n"), a mark shows the new one;
# ms is -1 after ``timeout`` ms.  ``follows`` says whether the tab had a mark.
MOVE = """async ([step, timeout]) => {
  const gb = window.__gb;
  const box = gb.stepBox(), slider = gb.slider();
  const follows = gb.candidates(slider.value).length > 0;
  const t0 = performance.now();
  slider.value = step;
  return await new Promise((resolve) => {
    const check = () => {
      const dt = performance.now() - t0;
      if (box.value === step && (!follows || gb.candidates(step).length > 0))
        resolve([dt, follows]);
      else if (dt > timeout) resolve([-1, follows]);
      else requestAnimationFrame(check);
    };
    check();
  });
}"""

OFFSITE_NOTE = (
    "Requests to another host: the machine has no outside network, so any request "
    "a page makes to another host fails. They used to come from pages whose "
    "Bokeh session had been discarded before their websocket connected (the "
    "server keeps an unjoined session for `--unused-session-lifetime`, here "
    f"{LIFETIME_MS} ms) and made anew for it: Panel pointed that session's "
    "stylesheets at `cdn.holoviz.org`. The app now sets the local address in "
    "every session it builds (`ui/app.py`, `_serve_styles_locally`)."
)

SETTLE_S = 1.0
"""Seconds a user looks at the app after it appeared, before the first click."""

READY = "() => __gb.tabs() !== null && __gb.slider() !== null && !!__gb.stepBox()"


def say(text: str) -> None:
    """Print a progress line to stderr, so stdout carries only the report."""
    stamp = time.strftime("%H:%M:%S")
    print(f"[bench-load {stamp}] {text}", file=sys.stderr, flush=True)


# -- the server ----------------------------------------------------------------


class LoadServer:
    """The app served with short session expiry, and a probe of its live objects.

    Parameters
    ----------
    folder : Path
        The sessions folder holding ``demo.session``; the served module and
        the probe's file go there too.
    log : Path
        Where the server's output goes.
    """

    def __init__(self, folder: Path, log: Path) -> None:
        app = folder / "app.py"
        app.write_text(PROBE_APP, encoding="utf-8")
        self.probe_file = folder / "probe.json"
        self.log = log
        self._log_read = 0
        flags = (
            "--unused-session-lifetime", str(LIFETIME_MS),
            "--check-unused-sessions", str(CHECK_MS),
        )  # fmt: skip
        os.environ[PROBE_ENV] = str(self.probe_file)
        try:
            self.server = AppServer(folder, *flags, app=app, log=log)
        finally:
            del os.environ[PROBE_ENV]
        self.url = f"{self.server.url}?session={DEMO}"

    def rss_mb(self) -> float:
        """Return the server's resident memory in MB."""
        return self.server.rss_mb()

    def alive(self, trim: bool = False) -> dict[str, int]:
        """Return the counts of the app's objects alive in the server.

        The probe's own request makes one Bokeh session (``server_sessions``
        counts it, and earlier probes' sessions until they expire).
        """
        self.probe_file.unlink(missing_ok=True)
        query = "trim" if trim else "1"
        with urllib.request.urlopen(f"{self.server.url}?probe={query}", timeout=60):
            pass
        return dict(json.loads(self.probe_file.read_text(encoding="utf-8")))

    def wait_released(self, timeout: float = 30.0) -> tuple[float, dict[str, int]]:
        """Wait until no app object is alive; return (seconds waited, counts).

        The counts are the last ones read (with garbage collected and freed
        memory trimmed); they still show objects if ``timeout`` ran out.
        """
        t0 = time.monotonic()
        while True:
            alive = self.alive()
            waited = time.monotonic() - t0
            if alive["app_states"] == alive["apps"] == alive["tabs"] == 0:
                return waited, self.alive(trim=True)
            if waited > timeout:
                return waited, alive
            time.sleep(0.25)

    def errors(self) -> list[str]:
        """Return the new lines of the server's log that report an error.

        Each call returns only what the log gained since the previous call.
        """
        with self.log.open("rb") as f:
            f.seek(self._log_read)
            text = f.read()
        self._log_read += len(text)
        bad = re.compile(r"Traceback|ERROR|Exception|Error:")
        lines = text.decode("utf-8", errors="replace").splitlines()
        return [line for line in lines if bad.search(line)]

    def stop(self) -> None:
        """Stop the server."""
        self.server.stop()


# -- one user ------------------------------------------------------------------


@dataclass
class UserLog:
    """What one user did and saw."""

    open_s: float = -1.0
    move_ms: list[float] = field(default_factory=list)
    followed: list[bool] = field(default_factory=list)
    tab_ms: list[float] = field(default_factory=list)
    tab_retries: int = 0
    errors: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)


class User(Student):
    """One student in their own browser context: opens the app, moves, leaves.

    Every failed request, page error, console error and websocket closed
    before the user left is recorded in ``log.errors``.
    """

    def __init__(self, browser: Browser, url: str, seed: int) -> None:
        self.browser = browser
        self.url = url
        self.rng = np.random.default_rng(seed)
        self.log = UserLog()
        self._leaving = False
        self._page: Page | None = None

    async def open(self) -> None:
        """Open the app and wait until its models are in the page."""
        t0 = time.perf_counter()
        context = await self.browser.new_context(
            viewport={"width": 1400, "height": 900}
        )
        page = self._page = await context.new_page()
        self._listen(page)
        async with page.expect_console_message(
            lambda m: "Websocket connection 0 is now open" in m.text,
            timeout=OPEN_TIMEOUT_MS,
        ):
            await page.goto(self.url, timeout=OPEN_TIMEOUT_MS)
        await page.evaluate(PAGE_HELPERS)
        await page.wait_for_function(READY, timeout=OPEN_TIMEOUT_MS, polling=200)
        self.log.open_s = time.perf_counter() - t0
        # NOTE: a tab switch in the app's first second may be lost (the page
        # then reports "reference ... isn't known"); people look first.
        await asyncio.sleep(SETTLE_S)

    async def show_tab(self, tab: int) -> None:
        """Click through to tab ``tab`` (0-based) and wait until it is drawn.

        Right after loading, the app may still apply the URL's tab and undo
        the switch; a switch not taken within 15 s is made again (3 tries).
        """
        page = self._require_page()
        shown = (
            f"() => {{ const t = __gb.tabs(); return t.active === {tab} &&"
            f" __gb.kind(t.tabs[{tab}].child) !== 'Spacer'; }}"
        )
        t0 = time.perf_counter()
        for attempt in range(3):
            await page.evaluate(f"() => {{ __gb.tabs().active = {tab}; }}")
            try:
                await page.wait_for_function(shown, timeout=15_000, polling=100)
                break
            except PlaywrightTimeout:
                self.log.tab_retries += 1
                if attempt == 2:
                    self.log.errors.append(f"tab {tab + 1} not shown within 45 s")
                    return
        self.log.tab_ms.append(1e3 * (time.perf_counter() - t0))

    async def move(self, n_steps: int) -> None:
        """Move the cursor to a random other step and time until it is shown."""
        page = self._require_page()
        step = self.other_step(
            await page.evaluate("() => __gb.slider().value"), n_steps
        )
        ms, follows = await page.evaluate(MOVE, [step, MOVE_TIMEOUT_MS])
        if ms < 0:
            self.log.errors.append(
                f"cursor move to step {step} not shown within {MOVE_TIMEOUT_MS} ms"
            )
            return
        self.log.move_ms.append(ms)
        self.log.followed.append(bool(follows))

    async def leave(self) -> None:
        """Close the user's browser context (the websocket closes with it)."""
        self._leaving = True
        if self._page is not None:
            await self._page.context.close()
            self._page = None

    def _require_page(self) -> Page:
        if self._page is None:
            raise RuntimeError("the user has not opened the app (call open first)")
        return self._page

    def _listen(self, page: Page) -> None:
        err = self.log.errors.append

        def on_failed(r: Any) -> None:
            if urllib.parse.urlsplit(r.url).hostname != "127.0.0.1":
                self.log.offsite.append(r.url)
            elif not self._leaving:
                err(f"request failed: {r.url} {r.failure}")

        def on_console(m: Any) -> None:
            # A request to another host fails without a network: counted above.
            if m.type == "error" and "ERR_NAME_NOT_RESOLVED" not in m.text:
                err(f"console error: {m.text}")

        def on_ws(ws: Any) -> None:
            ws.on("socketerror", lambda e: err(f"websocket error: {e}"))
            ws.on("close", lambda _: self._leaving or err("websocket closed early"))

        page.on("pageerror", lambda e: err(f"page error: {e}"))
        page.on("console", on_console)
        page.on("requestfailed", on_failed)
        page.on(
            "response",
            lambda r: r.status >= 400 and err(f"HTTP {r.status}: {r.url}"),
        )
        page.on("websocket", on_ws)


# -- 1. load -------------------------------------------------------------------


@dataclass
class LoadResult:
    """The concurrent-users part."""

    users: int = 0
    driver: str = "browser"
    max_connected: int = 0
    logs: list[UserLog] = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_baseline_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_after_raw_mb: float = 0.0
    rss_after_mb: float = 0.0
    released_s: float = 0.0
    alive_after: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    deadline_hit: bool = False
    server_errors: list[str] = field(default_factory=list)
    samples: list[tuple[float, int, float]] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Return every error of the users and of the server."""
        out = [e for log in self.logs for e in log.errors] + self.server_errors
        if self.deadline_hit:
            out.append("the load part hit its deadline before every user left")
        return out

    @property
    def offsite(self) -> list[str]:
        """Return the pages' failed requests to hosts other than the server."""
        return [url for log in self.logs for url in log.offsite]


async def _sample_rss(
    server: LoadServer, connected: list[int], out: list[tuple[float, int, float]]
) -> None:
    """Record (seconds, users connected, RSS MB) twice a second until cancelled."""
    t0 = time.monotonic()
    while True:
        out.append((time.monotonic() - t0, connected[0], server.rss_mb()))
        await asyncio.sleep(0.5)


async def run_load(
    server: LoadServer,
    browser: Browser,
    n_steps: int,
    users: int,
    ramp: float,
    moves: int,
    tabs: int,
    think: tuple[float, float],
    deadline: float,
    warm_up: bool = True,
    driver: str = "browser",
) -> LoadResult:
    """Connect ``users`` users, ``ramp`` s apart; each moves, waits for all, leaves.

    ``driver`` is "browser" (a Chromium context per user) or "client" (a
    Bokeh client session per user).  With ``warm_up``, one user comes and
    goes first, so that imports and caches are in place when the baseline
    memory is read.
    """

    def new_user(seed: int) -> Any:
        if driver == "client":
            timeouts = (OPEN_TIMEOUT_MS / 1e3, MOVE_TIMEOUT_MS / 1e3)
            return ClientUser(server.url, seed, UserLog(), *timeouts)
        return User(browser, server.url, seed)

    res = LoadResult(users=users, driver=driver, rss_start_mb=server.rss_mb())
    if warm_up:
        warm = new_user(0)

        async def warm_up_user() -> None:
            await warm.open()
            await warm.session(n_steps, 2, 2, (0.1, 0.2))

        try:
            await asyncio.wait_for(warm_up_user(), deadline)
        finally:
            await warm.leave()
        if warm.log.errors:
            raise RuntimeError(f"the warm-up user failed: {warm.log.errors[:3]}")
    _, alive = await asyncio.to_thread(server.wait_released)
    res.rss_baseline_mb = server.rss_mb()
    before = "baseline after a warm-up user" if warm_up else "before this round"
    say(f"load: {before} {res.rss_baseline_mb:.0f} MB, {alive}")

    connected = [0]
    everyone = asyncio.Event()
    done = [0]

    crowd = [new_user(1000 + i) for i in range(users)]

    async def one(i: int) -> UserLog:
        await asyncio.sleep(i * ramp)
        user = crowd[i]
        try:
            await user.open()
            connected[0] += 1
            res.max_connected = max(res.max_connected, connected[0])
            if res.max_connected == users:
                everyone.set()
            await user.session(n_steps, moves, tabs, think)
        except Exception as exc:  # one user's failure is an error, not a crash
            user.log.errors.append(f"user {i}: {type(exc).__name__}: {exc}")
        finally:
            done[0] += 1
            if done[0] == users or res.max_connected == users:
                everyone.set()
            await everyone.wait()
            await asyncio.sleep(2.0)
            await user.leave()
            connected[0] -= 1 if user.log.open_s >= 0 else 0
        return user.log

    sampler = asyncio.create_task(_sample_rss(server, connected, res.samples))
    t0 = time.monotonic()
    tasks = [asyncio.create_task(one(i)) for i in range(users)]
    finished, late = await asyncio.wait(tasks, timeout=deadline)
    res.deadline_hit = bool(late)
    for task in late:
        task.cancel()
    for user in crowd:
        await user.leave()
    res.duration_s = time.monotonic() - t0
    sampler.cancel()
    res.logs = [user.log for user in crowd]
    res.rss_peak_mb = max(rss for _, _, rss in res.samples)
    res.rss_after_raw_mb = server.rss_mb()
    res.released_s, res.alive_after = await asyncio.to_thread(
        server.wait_released, 60.0
    )
    res.rss_after_mb = server.rss_mb()
    res.server_errors = server.errors()
    say(
        f"load: {res.max_connected} connected at once, peak {res.rss_peak_mb:.0f} MB, "
        f"after {res.rss_after_mb:.0f} MB ({res.alive_after}), "
        f"{len(res.errors)} errors"
    )
    return res


# -- 2. connect/disconnect cycles ----------------------------------------------


@dataclass
class CycleResult:
    """The leak check: memory and live objects after each cycle."""

    rss_mb: list[float] = field(default_factory=list)
    released_s: list[float] = field(default_factory=list)
    not_released: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)
    move_ms: list[float] = field(default_factory=list)
    window: int = 5

    @property
    def baseline_mb(self) -> float:
        """Return the median RSS after the first ``window`` cycles."""
        return float(np.median(self.rss_mb[: self.window]))

    @property
    def final_mb(self) -> float:
        """Return the median RSS after the last ``window`` cycles."""
        return float(np.median(self.rss_mb[-self.window :]))

    @property
    def slope_mb(self) -> float:
        """Return the least-squares growth of RSS per cycle (MB)."""
        if len(self.rss_mb) < 2:
            return 0.0
        return float(np.polyfit(np.arange(len(self.rss_mb)), self.rss_mb, 1)[0])


async def run_cycles(
    server: LoadServer,
    browser: Browser,
    n_steps: int,
    cycles: int,
    moves: int,
    on_cycle: Callable[[int, float], None] | None = None,
    tabs: int = 2,
) -> CycleResult:
    """Let one user at a time connect, move ``moves`` times on ``tabs`` tabs, leave."""
    res = CycleResult(window=max(1, min(5, cycles // 4)))
    server.errors()  # only this part's errors count below
    for i in range(cycles):
        user = User(browser, server.url, seed=5000 + i)
        try:
            await user.open()
            await user.session(n_steps, moves, tabs, (0.05, 0.15))
        except Exception as exc:
            user.log.errors.append(f"cycle {i + 1}: {type(exc).__name__}: {exc}")
        finally:
            await user.leave()
        res.errors += user.log.errors
        res.offsite += user.log.offsite
        res.move_ms += user.log.move_ms
        waited, alive = await asyncio.to_thread(server.wait_released)
        res.released_s.append(waited)
        if alive["app_states"] or alive["apps"] or alive["tabs"]:
            res.not_released.append((i + 1, alive))
        res.rss_mb.append(server.rss_mb())
        if on_cycle is not None:
            on_cycle(i + 1, res.rss_mb[-1])
    res.errors += server.errors()
    return res


# -- the report ----------------------------------------------------------------


def verdicts(
    load: LoadResult | None,
    cycles: CycleResult | None,
    tolerance: float,
    later: Sequence[LoadResult] = (),
) -> list[tuple[str, str, bool | None]]:
    """Return (check, measured, passed) for each check of the run.

    ``later`` are the load part's rounds after the first, on the same server.
    ``passed`` is None for a row given as information only.
    """
    rows: list[tuple[str, str, bool | None]] = []
    if load is not None:
        rows += [
            (
                f"{load.users} users connected at the same time",
                f"{load.max_connected}",
                load.max_connected >= load.users,
            ),
            ("load: no error", _count(load.errors, "error"), not load.errors),
            _offsite_row("load", load.offsite)
            if load.driver == "browser"
            else (
                "load: no request to a host other than the server",
                "not measured: Bokeh clients load no page resources (see cycles)",
                None,
            ),
            (
                "load: every user's objects released after they left",
                f"{_alive(load.alive_after)} after {load.released_s:.1f} s",
                _released(load.alive_after),
            ),
            (
                "load: memory after all left, over the baseline (information: "
                "see section 1)",
                f"{load.rss_after_mb - load.rss_baseline_mb:+.1f} MB "
                f"({load.rss_baseline_mb:.0f} -> peak {load.rss_peak_mb:.0f} -> "
                f"{load.rss_after_mb:.0f})",
                None,
            ),
        ]
    if load is not None and later:
        rounds = (
            "load, round 2" if len(later) == 1 else f"load, rounds 2-{len(later) + 1}"
        )
        errors = [e for res in later for e in res.errors]
        rows += [
            (
                f"{rounds}: {load.users} users connected each time",
                ", ".join(str(res.max_connected) for res in later),
                all(res.max_connected >= res.users for res in later),
            ),
            (f"{rounds}: no error", _count(errors, "error"), not errors),
            (
                f"{rounds}: every user's objects released after they left",
                "; ".join(_alive(res.alive_after) for res in later),
                all(_released(res.alive_after) for res in later),
            ),
            (
                "load: peak memory round by round (information: see section 1)",
                " -> ".join(f"{res.rss_peak_mb:.0f}" for res in [load, *later]) + " MB",
                None,
            ),
        ]
    if cycles is not None and cycles.rss_mb:
        n = len(cycles.rss_mb)
        rows += [
            ("cycles: no error", _count(cycles.errors, "error"), not cycles.errors),
            _offsite_row("cycles", cycles.offsite),
            (
                "cycles: every user's objects released after each cycle",
                f"{n - len(cycles.not_released)} of {n} cycles",
                not cycles.not_released,
            ),
            (
                f"cycles: final memory within {tolerance:.0f} MB of the baseline",
                f"{cycles.final_mb - cycles.baseline_mb:+.1f} MB "
                f"({cycles.baseline_mb:.0f} -> {cycles.final_mb:.0f}; slope "
                f"{cycles.slope_mb:+.2f} MB/cycle)",
                cycles.final_mb - cycles.baseline_mb <= tolerance,
            ),
        ]
    return rows


def render(r: dict[str, Any]) -> str:
    """Return the Markdown page for the results ``r``."""
    m, load = r["machine"], r["load_avg"]
    parts = ["# glassnet load test", ""]
    if r["quick"]:
        parts += [
            "> **Quick smoke run** (`--quick`): few users and cycles. These numbers "
            "are not the reference results.",
            "",
        ]
    parts += [
        "Generated by `benchmarks/bench_load.py`; do not edit by hand. The engine's "
        "benchmarks are in [benchmarks.md](benchmarks.md), the single-user app "
        "benchmark in [benchmarks-app.md](benchmarks-app.md).",
        "",
        f"- Command (from the repository root): `{r['command']}`",
        f"- Date: {m['date']} (whole run {r['total_s'] / 60:.1f} min)",
        f"- Code measured: commit {m['git']}; {r['ui_state']}",
        f"- Machine: {m['nproc']} CPUs (`nproc`; {m['affinity']} usable), "
        f"{m['cpu_model']}, {m['mem_gib']:.1f} GiB RAM, {m['platform']}",
        f"- Python {m['python']}, NumPy {m['numpy']}, {r['versions']}",
        f"- The server's Python allocator: {r['allocator']}",
        f"- Load average (1, 5, 15 min) before: {_load(load['before'])}; at the end: "
        f"{_load(load['end'])}",
        f"- Other processes kept {load['others']:.2f} CPUs busy on average (all CPU "
        "time in `/proc/stat` minus this benchmark's own process and the children "
        f"it waited for; the served app and Chromium count as others); steal "
        f"{load['steal']:.1f} %",
        f"- **{load['verdict']}** The server, the users (section 1), the Chromium "
        "of section 2 and everything else on the machine share its CPUs, so every "
        "latency below includes waiting for a CPU: rerun the command on an "
        "otherwise idle machine for reference figures.",
        "",
        "## Checks",
        "",
        _table(
            ("check", "measured", "result"),
            [(c, v, _result(ok)) for c, v, ok in r["verdicts"]],
        ),
    ]
    offsite = (r["load"].offsite if r["load"] else []) + (
        r["cycles"].offsite if r["cycles"] else []
    )
    if offsite:
        parts += ["", OFFSITE_NOTE]
    if r["load"] is not None:
        parts += ["", _load_section(r["load"], r)]
    if r["cycles"] is not None:
        parts += ["", _cycles_section(r["cycles"], r)]
    if r["failed"]:
        parts += ["", "## Parts that failed", ""]
        parts += [f"- {line}" for line in r["failed"]]
    return "\n".join(parts) + "\n"


def _load_section(res: LoadResult, r: dict[str, Any]) -> str:
    moves = [ms for log in res.logs for ms in log.move_ms]
    followed = [f for log in res.logs for f in log.followed]
    marks = [ms for ms, f in zip(moves, followed, strict=True) if f]
    box = [ms for ms, f in zip(moves, followed, strict=True) if not f]
    opens = [1e3 * log.open_s for log in res.logs if log.open_s >= 0]
    tabs = [ms for log in res.logs for ms in log.tab_ms]
    lo, hi = r["think"]
    client = res.driver == "client"
    users = (
        "Every user is a Bokeh client session (`benchmarks/load_client.py`): it "
        "loads the app's page over HTTP (the server builds the user's Bokeh "
        "session for it, as for a browser), joins that session over the websocket "
        "with the page's token, pulls the document and keeps a copy of it, "
        "applying every patch the server sends; it changes the tabs' and the step "
        "slider's models as BokehJS does. Nothing is rendered, so the machine's "
        "CPUs go to the server, as in a class whose students bring their own "
        "computers. A reference to an object the server never sent, a server "
        "ERROR message or a websocket closed by the server is an error"
        if client
        else "One headless Chromium; every user is a browser context of its own "
        "(its own Bokeh session). A failed request, a page or console error or a "
        "websocket closed early is an error"
    )
    timed = (
        "from sending the slider's new value until the document copy's step box "
        "shows the new step"
        if client
        else "in the page from setting the slider's Bokeh model to the animation "
        "frame in which the step box shows the new step"
    )
    lines = [
        f"## 1. {res.users} concurrent users",
        "",
        f"`panel serve ui/app.py` (through a wrapper that adds the probe below) on the "
        f"demo session, `--unused-session-lifetime {LIFETIME_MS} "
        f"--check-unused-sessions {CHECK_MS}`, on a loopback port. {users}. "
        f"A user connects every {r['ramp']:g} s; each opens the app, "
        f"visits {r['tabs']} random tabs and moves the step slider {r['moves']} "
        f"times in all, {lo:g}-{hi:g} s apart (think time); then it waits until "
        "every user has connected, stays 2 s and leaves. A cursor move is timed "
        f"{timed} and, on a tab with a cursor mark (a Span at the step, or a text "
        '"Step n"), a mark shows it too. A move not shown within '
        f"{MOVE_TIMEOUT_MS / 1e3:.0f} s is an error. Milliseconds.",
        "",
        _table(
            ("what", "n", "p50", "p95", "max"),
            [
                ("cursor move, all", *_pcts(moves)),
                ("cursor move, tab with a cursor mark", *_pcts(marks)),
                ("cursor move, tab without (step box only)", *_pcts(box)),
                ("tab switch, until the tab is drawn", *_pcts(tabs)),
                (
                    "opening the app, until its models are in the "
                    + ("client's copy" if client else "page"),
                    *_pcts(opens),
                ),
            ],
        ),
        "",
        f"The part took {res.duration_s:.0f} s; at most {res.max_connected} users "
        "were connected at the same time."
        + (
            ""
            if client
            else " Tab switches not shown within 15 s and made again: "
            f"{sum(log.tab_retries for log in res.logs)} (of {len(tabs)})."
        ),
        "",
        "Server memory (the served process's `VmRSS`, MB):",
        "",
        _table(
            ("server started", "baseline: a warm-up user came and left",
             f"peak ({res.users} users)", "all left", "all left, released"),
            [(f"{res.rss_start_mb:.0f}", f"{res.rss_baseline_mb:.0f}",
              f"{res.rss_peak_mb:.0f}", f"{res.rss_after_raw_mb:.0f}",
              f"{res.rss_after_mb:.0f} (after {res.released_s:.1f} s)")],
        ),  # fmt: skip
        "",
        "*Released*: the benchmark asks the server (a probe request served by the "
        "same process) to collect garbage and count the app's objects still alive "
        "(`AppState`, `App`, tabs) until none is left; then it trims the C heap "
        "(`malloc_trim`), so that memory freed by Python is handed back to the "
        "system and RSS shows what is still in use. Baseline and the released "
        "figure are both read that way. Memory still held once every user's "
        "objects are gone is held by the allocators (Python keeps a block of "
        "objects while any object in it lives, and caches; glibc keeps "
        "fragments), not by a user's session: the cycles of section 2 run on "
        "the same server right after this part and show whether it is reused "
        "(RSS flat) or keeps growing.",
    ]  # fmt: skip
    rounds = r["rounds"]
    if len(rounds) > 1:
        lines += [
            "",
            f"The same crowd came {len(rounds)} times to the same server, one round "
            "after the other (the first after the warm-up user). If each round's "
            "users left memory behind, each peak would be higher than the one "
            "before; if the memory held after a round is kept for reuse, the next "
            "round's peak stays where the first one was. *Python objects* counts "
            "every object the garbage collector tracks, after the round's users "
            "were released. MB.",
            "",
            _table(
                (
                    "round",
                    "before",
                    "peak",
                    "all left, released",
                    "Python objects",
                    "errors",
                ),
                [
                    (
                        f"{i}",
                        f"{x.rss_baseline_mb:.0f}",
                        f"{x.rss_peak_mb:.0f}",
                        f"{x.rss_after_mb:.0f}",
                        f"{x.alive_after.get('python_objects', 0):,}",
                        f"{len(x.errors)}",
                    )
                    for i, x in enumerate(rounds, 1)
                ],
            ),  # fmt: skip
        ]
    errors = [e for x in rounds[1:] for e in x.errors]
    return "\n".join(lines + _error_lines(res.errors + errors))


def _cycles_section(res: CycleResult, r: dict[str, Any]) -> str:
    n = len(res.rss_mb)
    every = max(1, n // 10)
    picks = sorted({*range(0, n, every), n - 1})
    lines = [
        f"## 2. Leak check: {n} connect/disconnect cycles",
        "",
        "On the same server, right after section 1 (when both parts run). "
        f"One user at a time opens the app, visits 2 random tabs, moves the cursor "
        f"{r['cycle_moves']} times and leaves. After each cycle the benchmark waits "
        "until the server holds none of the app's objects (as above: garbage "
        "collected, then the C heap trimmed) and reads its RSS. Baseline = median "
        f"RSS after the first {res.window} cycles, final = median after the last "
        f"{res.window}; slope = least-squares growth per cycle. A per-session leak "
        "shows as objects still alive after a cycle, or as a steady slope. Waiting "
        "for release took p50 "
        f"{np.median(res.released_s):.1f} s, max {max(res.released_s):.1f} s.",
        "",
        _table(
            (
                "baseline MB",
                "final MB",
                "final - baseline",
                "slope MB/cycle",
                "cursor moves (p50 / p95 ms)",
            ),
            [
                (
                    f"{res.baseline_mb:.1f}",
                    f"{res.final_mb:.1f}",
                    f"{res.final_mb - res.baseline_mb:+.1f}",
                    f"{res.slope_mb:+.3f}",
                    " / ".join(_pcts(res.move_ms)[1:3]),
                )
            ],
        ),  # fmt: skip
        "",
        "RSS after cycle: "
        + ", ".join(f"{i + 1}: {res.rss_mb[i]:.1f}" for i in picks)
        + " MB.",
    ]
    if res.not_released:
        lines += ["", "Cycles whose objects were not released within 30 s:", ""]
        lines += [f"- cycle {i}: {_alive(a)}" for i, a in res.not_released[:20]]
    return "\n".join(lines + _error_lines(res.errors))


def _error_lines(errors: list[str]) -> list[str]:
    """Return the errors counted by kind (numbers left out), then the first 20."""
    if not errors:
        return []
    kinds: dict[str, int] = {}
    for e in errors:
        kind = re.sub(r"\d+", "N", e[:120])
        kinds[kind] = kinds.get(kind, 0) + 1
    lines = ["", f"Errors ({len(errors)}) by kind:", ""]
    lines += [f"- {n} x `{k}`" for k, n in sorted(kinds.items(), key=lambda kn: -kn[1])]
    lines += ["", "The first 20:", ""]
    return lines + [f"- `{e[:300]}`" for e in errors[:20]]


def _result(ok: bool | None) -> str:
    return "-" if ok is None else "passed" if ok else "**FAILED**"


def _offsite_row(part: str, urls: list[str]) -> tuple[str, str, bool]:
    pages = len(set(urls))
    text = _count(urls, "failed request")
    if urls:
        hosts = sorted({str(urllib.parse.urlsplit(u).hostname) for u in urls})
        text += f" ({pages} distinct URLs, to {', '.join(hosts)})"
    return (f"{part}: no request to a host other than the server", text, not urls)


def _pcts(values: list[float]) -> tuple[str, str, str, str]:
    if not values:
        return ("0", "-", "-", "-")
    p = percentiles(values)
    return (str(p["n"]), f"{p['p50']:.0f}", f"{p['p95']:.0f}", f"{p['max']:.0f}")


def _count(items: list[str], what: str) -> str:
    return f"{len(items)} {what}{'' if len(items) == 1 else 's'}"


def _alive(alive: dict[str, int]) -> str:
    keys = ("app_states", "apps", "tabs", "documents", "models")
    text = ", ".join(f"{alive.get(k, '?')} {k.replace('_', ' ')}" for k in keys)
    return text.replace("models", "Bokeh models")


def _released(alive: dict[str, int]) -> bool:
    return all(alive.get(k, 1) == 0 for k in ("app_states", "apps", "tabs"))


def _load(v: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in v)


# -- the command line ----------------------------------------------------------


def prepare_folder(folder: Path) -> int:
    """Record the demo session into ``folder`` (kept if there); return its steps."""
    from sessions import Session
    from ui.cli import main as glassnet

    folder.mkdir(parents=True, exist_ok=True)
    demo = folder / DEMO
    if not demo.exists():
        with contextlib.redirect_stdout(io.StringIO()) as said:
            code = glassnet(["demo", "--out", str(demo)])
        if code != 0:
            raise RuntimeError(
                f"glassnet demo could not record {demo}: {said.getvalue()}"
            )
    with Session(demo) as s:
        return int(s.n_steps)


async def _part(out: dict[str, Any], label: str, run: Any) -> Any:
    """Await ``run``; on failure note it for the report and return None."""
    try:
        return await run
    except Exception as err:  # a failed part must not lose the other's results
        say(f"{label} FAILED: {err!r}")
        out["failed"].append(f"{label}: {type(err).__name__}: {err}")
        return None


async def _run(args: argparse.Namespace, folder: Path, logs: Path) -> dict[str, Any]:
    n_steps = prepare_folder(folder)
    out: dict[str, Any] = {"load": None, "rounds": [], "cycles": None, "failed": []}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            server = LoadServer(folder, logs / "serve.log")
            try:
                for i in range(args.rounds if "load" in args.only else 0):
                    res = await _part(
                        out, f"load, round {i + 1}", run_load(
                            server, browser, n_steps, args.users, args.ramp,
                            args.moves, args.tabs, args.think, args.deadline,
                            warm_up=i == 0, driver=args.driver,
                        ),
                    )  # fmt: skip
                    if res is None:
                        break
                    out["rounds"].append(res)
                out["load"] = out["rounds"][0] if out["rounds"] else None
                if "cycles" in args.only:
                    out["cycles"] = await _part(
                        out, "cycles", run_cycles(
                            server, browser, n_steps, args.cycles, args.cycle_moves,
                            lambda i, mb: say(f"cycle {i}: RSS {mb:.1f} MB"),
                        ),
                    )  # fmt: skip
            finally:
                server.stop()
        finally:
            await browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run both parts, write the report; 1 if a check failed."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    cpu0 = CpuTimes.now()
    load: dict[str, Any] = {"before": os.getloadavg()}
    say(f"load average before: {load['before']}")
    machine = machine_info(
        {"torch": "-", "threads": 0, "interop_threads": 0, "pools": []}
    )
    with tempfile.TemporaryDirectory(prefix="glassnet-bench-load-") as tmp:
        results = asyncio.run(_run(args, Path(tmp) / "sessions", Path(tmp)))
    load["end"] = os.getloadavg()
    cpu1 = CpuTimes.now()
    load["steal"] = cpu1.steal_percent_since(cpu0)
    load["others"] = cpu1.others_cpu_since(cpu0)
    load["verdict"] = _verdict(load, machine["nproc"] or 1)
    machine["git"] = git_state(ROOT)
    checks = verdicts(
        results["load"], results["cycles"], args.tolerance, results["rounds"][1:]
    )
    results.update(
        quick=args.quick,
        machine=machine,
        load_avg=load,
        versions=_versions(),
        ui_state=_ui_state(),
        verdicts=checks,
        command=shlex.join(
            [".venv/bin/python", "benchmarks/bench_load.py", *args.argv]
        ),
        total_s=time.perf_counter() - started,
        think=args.think,
        ramp=args.ramp,
        moves=args.moves,
        tabs=args.tabs,
        cycle_moves=args.cycle_moves,
        allocator=(
            f"`PYTHONMALLOC={os.environ['PYTHONMALLOC']}` (from the environment)"
            if os.environ.get("PYTHONMALLOC")
            else "CPython's default (pymalloc)"
        ),
    )
    page = render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print(page)
    say(f"wrote {args.out}")
    failed = [c for c, _, ok in checks if ok is False] + results["failed"]
    if failed:
        print("bench_load FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 5 users, 8 cycles")
    p.add_argument(
        "--out",
        type=Path,
        help="Markdown file to write (default docs/benchmarks-load.md; with --quick "
        "a file in the temp directory)",
    )
    p.add_argument("--users", type=int, help="concurrent users (30)")
    p.add_argument("--ramp", type=float, help="seconds between two users connecting")
    p.add_argument("--moves", type=int, help="cursor moves per user")
    p.add_argument("--tabs", type=int, help="tabs each user visits (1 to 7)")
    p.add_argument(
        "--driver",
        choices=("client", "browser"),
        help="the load part's users: Bokeh client sessions (client, the default) "
        "or Chromium contexts (browser)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        help="times the load part's crowd comes to the same server (3)",
    )
    p.add_argument("--cycles", type=int, help="connect/disconnect cycles (50)")
    p.add_argument("--cycle-moves", type=int, help="cursor moves per cycle")
    p.add_argument(
        "--deadline", type=float, help="seconds after which the load part stops"
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=25.0,
        help="MB by which memory may stay above its baseline (default 25)",
    )
    p.add_argument(
        "--only",
        default="load,cycles",
        help="comma-separated parts to run: load, cycles (default both)",
    )
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    if set(args.only) - {"load", "cycles"} or not args.only:
        p.error(f"--only takes load and cycles; got {args.only}")
    if min(args.users, args.cycles, args.rounds) < 1 or args.moves < args.tabs:
        p.error("--users, --rounds and --cycles must be >= 1, and --moves >= --tabs")
    if not 1 <= args.tabs <= N_TABS:
        p.error(f"--tabs must be from 1 to {N_TABS}; got {args.tabs}")
    if args.out is None:
        if args.quick:
            args.out = Path(tempfile.gettempdir()) / "glassnet-benchmarks-load-quick.md"
        else:
            args.out = ROOT / "docs" / "benchmarks-load.md"
    args.argv = argv
    return args


if __name__ == "__main__":
    raise SystemExit(main())
