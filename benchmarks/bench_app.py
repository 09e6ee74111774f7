"""Measure the app: cursor moves on the server, slider to plot, memory per user.

Usage, from the repository root::

    .venv/bin/python benchmarks/bench_app.py          # docs/benchmarks-app.md
    .venv/bin/python benchmarks/bench_app.py --quick  # smoke run, to a temp file

Three measurements, each on the demo session and on a long session of net (a)
(see benchmarks/README.md, "The app"):

1. server side, in this process: the app built on a Bokeh Document, each tab
   made visible in turn, the cursor moved to random steps; the time until
   every watcher has returned and the document patch is serialized;
2. in Chromium, against ``panel serve ui/app.py``: the time from setting the
   step slider's Bokeh model to the frame in which the visible tab's cursor
   marks show the new step;
3. the server's resident memory with 1, 5 and 10 connected browser users,
   and after they left and their sessions expired.

This is a benchmark, not a test: it asserts nothing and pytest never collects it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_machine import CpuTimes, git_state, machine_info
from bench_nets import net_a
from bench_sessions import percentiles
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from sessions import Session, record
from ui.cursor import N_TABS
from ui.served import CHROMIUM, CHROMIUM_ARGS, AppServer

ROOT = Path(__file__).resolve().parents[1]
BROWSER_P95_TARGET_MS = 100.0
MEMORY_TARGET_MB = 20.0
DEMO = "demo.session"
LONG = "long.session"

FULL = {
    "long_steps": 100_000,
    "server_moves": 60,
    "browser_moves": 30,
    "users": (1, 5, 10),
    "profile_moves": 30,
}
QUICK = {
    "long_steps": 10_000,
    "server_moves": 15,
    "browser_moves": 8,
    "users": (1, 3),
    "profile_moves": 10,
}

# -- JavaScript run in the page ------------------------------------------------

# Helpers installed once per page as ``window.__gb``.  Models are found by
# walking references from the document roots (``all_models`` keeps replaced
# models for a while).  The visible tab is the active panel of the 7-panel
# Tabs model; a "cursor mark" is a Span at the step or a text model (Div,
# HTML pane, ...) that reads "Step <n>".
PAGE_HELPERS = """() => {
  const kind = m => m.constructor.__name__;
  const reach = (roots) => {
    const seen = new Set(), stack = [...roots];
    while (stack.length) {
      const m = stack.pop();
      if (!m || seen.has(m)) continue;
      seen.add(m);
      for (const r of m.references()) stack.push(r);
    }
    return seen;
  };
  const everything = () => reach(Bokeh.documents.flatMap(d => [...d.roots()]));
  const find = (test) => {
    for (const m of everything()) if (test(m)) return m;
    return null;
  };
  const tabs = () => find(m => kind(m) === 'Tabs' && m.tabs.length === N_TABS);
  const slider = () => find(m => kind(m) === 'Slider' && m.title === 'Step');
  const stepBox = () => find(m => m.title === 'Go to step' && 'value' in m);
  const visible = () => {
    const t = tabs();
    return t ? reach([t.tabs[t.active].child]) : new Set();
  };
  const shows = (m, step) => kind(m) === 'Span'
    ? m.location === step
    : new RegExp('Step ' + step + '(?![0-9])').test(m.text);
  const candidates = (step) => [...visible()].filter(
    m => (kind(m) === 'Span' || typeof m.text === 'string') && shows(m, step));
  window.__gb = {kind, tabs, slider, stepBox, visible, shows, candidates, marks: []};
  return true;
}""".replace("N_TABS", str(N_TABS))

# Installed before the page's scripts: note when each websocket frame is sent
# and received, so a move can be split into browser and server time.
WS_CLOCK = """(() => {
  const Native = window.WebSocket;
  const clock = window.__gbws = {sent: [], received: []};
  const send = Native.prototype.send;
  Native.prototype.send = function (data) {
    clock.sent.push(performance.now());
    return send.call(this, data);
  };
  class Clocked extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => clock.received.push(performance.now()));
    }
  }
  window.WebSocket = Clocked;
})();"""

# Set the slider, then check on every animation frame until ``done(step)``.
# Resolves to [total ms, ms to the first frame sent, ms from it to the first
# frame received, ms from it to the last frame received before done]; total
# is -1 after ``timeout`` ms.
MOVE_AND_WAIT = """async ([step, which, timeout]) => {
  const gb = window.__gb;
  const box = gb.stepBox();
  const done = which === 'marks'
    ? () => gb.marks.length > 0 && gb.marks.every(m => gb.shows(m, step))
    : which === 'box' ? () => box.value === step
    : () => gb.candidates(step).length > 0;
  const slider = gb.slider();
  const clock = window.__gbws;
  clock.sent.length = 0;
  clock.received.length = 0;
  const t0 = performance.now();
  slider.value = step;
  const total = await new Promise((resolve) => {
    const check = () => {
      const dt = performance.now() - t0;
      if (done()) resolve(dt);
      else if (dt > timeout) resolve(-1);
      else requestAnimationFrame(check);
    };
    check();
  });
  const end = t0 + total;
  const sent = clock.sent.find(t => t >= t0);
  const got = clock.received.filter(t => sent !== undefined && t >= sent && t <= end);
  if (total < 0 || sent === undefined || !got.length) return [total, -1, -1, -1];
  return [total, sent - t0, got[0] - sent, got[got.length - 1] - sent];
}"""

# Keep the candidate marks that moved on to ``step``; describe them ("2 Span").
FOLLOWING_MARKS = """(step) => {
  __gb.marks = (__gb.first || []).filter(m => __gb.shows(m, step));
  const n = {};
  for (const m of __gb.marks) n[__gb.kind(m)] = (n[__gb.kind(m)] || 0) + 1;
  return Object.entries(n).map(([k, v]) => v + ' ' + k).join(', ');
}"""


def say(text: str) -> None:
    """Print a progress line to stderr, so stdout carries only the report."""
    print(
        f"[bench-app {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True
    )


# -- the sessions ----------------------------------------------------------------


def prepare_sessions(folder: Path, long_steps: int) -> dict[str, dict[str, Any]]:
    """Record the demo and the long session of net (a) into ``folder`` (kept if there).

    Returns, per file name, its steps, size and recording time (0 if reused).
    """
    folder.mkdir(parents=True, exist_ok=True)
    info: dict[str, dict[str, Any]] = {}
    demo = folder / DEMO
    t0 = time.perf_counter()
    reused = demo.exists()
    if not reused:
        glassnet = Path(sys.executable).with_name("glassnet")
        cmd = [str(glassnet), "demo", "--out", str(demo)]
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    info[DEMO] = {"record_s": 0.0 if reused else time.perf_counter() - t0}

    long = folder / LONG
    net = net_a(long_steps)
    t0 = time.perf_counter()
    reused = False
    if long.exists():
        with Session(long) as s:
            reused = s.n_steps == net.steps and s.status == "completed"
        if not reused:
            long.unlink()
    if not reused:
        say(f"recording the long session ({net.steps:,} steps of net (a))")
        record(net.spec, net.config, net.data, long)
    info[LONG] = {"record_s": 0.0 if reused else time.perf_counter() - t0}
    for name, row in info.items():
        with Session(folder / name) as s:
            row["steps"] = s.n_steps
            row["events"] = s.n_events
            row["title"] = s.title
        row["size_mb"] = (folder / name).stat().st_size / 1e6
    return info


# -- 1. server side, in process ----------------------------------------------------


@dataclass
class ServerTab:
    """Cursor moves on one visible tab, timed in this process."""

    show_ms: float = 0.0
    move_ms: list[float] = field(default_factory=list)
    patches: int = 0
    patch_bytes: int = 0
    models: int = 0


@dataclass
class ServerResult:
    """The in-process measurement of one session."""

    build_ms: float = 0.0
    doc_ms: float = 0.0
    tabs: dict[int, ServerTab] = field(default_factory=dict)
    profile: str = ""
    profile_tab: int = -1


class _PatchMeter:
    """Serialize a move's document changes as the Bokeh server would send them.

    Panel batches the changes made while events are held into one PATCH-DOC
    message per connection; :meth:`flush` does that for everything collected
    since the last call.
    """

    def __init__(self, doc: Any) -> None:
        from bokeh.document.events import DocumentPatchedEvent
        from bokeh.protocol import Protocol

        self._patched = DocumentPatchedEvent
        self._protocol = Protocol()
        self._events: list[Any] = []
        self.events = 0
        self.bytes = 0
        doc.on_change(self._on_change)

    def _on_change(self, event: Any) -> None:
        if isinstance(event, self._patched):
            self._events.append(event)

    def flush(self) -> None:
        """Build the message for the collected changes; count events and bytes."""
        if not self._events:
            return
        msg = self._protocol.create("PATCH-DOC", self._events)
        self.events += len(self._events)
        self.bytes += len(msg.header_json) + len(msg.content_json)
        self.bytes += sum(len(b.to_bytes()) for b in msg.buffers)
        self._events = []


class _InProcessApp:
    """One user's app on a Bokeh Document, driven from Python.

    The document has no server session, so Panel is told it is connected and
    on its own thread: then ``pn.io.hold`` releases held events to the
    document's change callbacks (as on a server) instead of dropping them.
    """

    def __init__(self, folder: Path, name: str) -> None:
        import panel as pn
        from bokeh.document import Document
        from panel.io.state import set_curdoc

        from ui.app import App

        self._set_curdoc = set_curdoc
        t0 = time.perf_counter()
        self.app = App(folder, folder / name)
        self.build_ms = 1e3 * (time.perf_counter() - t0)
        self.doc = Document()
        t0 = time.perf_counter()
        with set_curdoc(self.doc):
            self.app.template.server_doc(self.doc)
            pn.state._thread_id = threading.get_ident()
        self.doc_ms = 1e3 * (time.perf_counter() - t0)
        pn.state._connected[self.doc] = True
        self.meter = _PatchMeter(self.doc)

    @property
    def state(self) -> Any:
        return self.app.state

    def set(self, **values: Any) -> float:
        """Set AppState parameters as a browser event would; return milliseconds."""
        t0 = time.perf_counter()
        with self._set_curdoc(self.doc):
            self.state.param.update(**values)
        self.meter.flush()
        return 1e3 * (time.perf_counter() - t0)


def _random_steps(rng: np.random.Generator, n_steps: int, n: int, start: int) -> list:
    """Return ``n`` random steps, each different from the one before."""
    out, prev = [], start
    while len(out) < n:
        s = int(rng.integers(0, n_steps))
        if s != prev:
            out.append(s)
            prev = s
    return out


def measure_server(
    folder: Path, name: str, n_moves: int, profile_moves: int, seed: int
) -> ServerResult:
    """Time cursor moves on each tab of one in-process app."""
    rng = np.random.default_rng(seed)
    ui = _InProcessApp(folder, name)
    out = ServerResult(build_ms=ui.build_ms, doc_ms=ui.doc_ms)
    n_steps = ui.state.n_steps
    for tab in range(N_TABS):
        res = ServerTab()
        res.show_ms = ui.set(tab=tab)
        for step in _random_steps(rng, n_steps, 3, ui.state.step):  # warm-up
            ui.set(step=step)
        ui.meter.events = ui.meter.bytes = 0
        for step in _random_steps(rng, n_steps, n_moves, ui.state.step):
            res.move_ms.append(ui.set(step=step))
        res.patches, res.patch_bytes = ui.meter.events, ui.meter.bytes
        res.models = len(ui.doc.models)
        out.tabs[tab] = res

    # Profile the moves on the slowest tab.
    slowest = max(out.tabs, key=lambda t: np.percentile(out.tabs[t].move_ms, 95))
    ui.set(tab=slowest)
    prof = cProfile.Profile()
    steps = _random_steps(rng, n_steps, profile_moves, ui.state.step)
    prof.enable()
    for step in steps:
        ui.set(step=step)
    prof.disable()
    out.profile_tab = slowest
    out.profile = _profile_table(prof, profile_moves)
    return out


def _profile_table(prof: cProfile.Profile, moves: int) -> str:
    """Return the top functions by cumulative and by own time, in ms per move."""
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, fn), (_, calls, own, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((cum, own, calls, _where(file, line, fn)))
    total = max(r[0] for r in rows) if rows else 0.0
    project = [r for r in rows if r[3].startswith(("ui/", "sessions/", "engine/"))]
    lines = [
        f"cProfile of {moves} moves (cProfile slows every call; read the shares). "
        f"Total {1e3 * total / moves:.1f} ms per move.",
        "",
        "Project functions by cumulative time:",
        "",
        _table(
            ("function", "cumulative ms/move", "own ms/move", "calls/move"),
            [
                (
                    f"`{w}`",
                    f"{1e3 * c / moves:.2f}",
                    f"{1e3 * o / moves:.2f}",
                    f"{n / moves:.1f}",
                )
                for c, o, n, w in sorted(project, reverse=True)[:12]
            ],
        ),
        "",
        "All functions by own time:",
        "",
        _table(
            ("function", "own ms/move", "cumulative ms/move", "calls/move"),
            [
                (
                    f"`{w}`",
                    f"{1e3 * o / moves:.2f}",
                    f"{1e3 * c / moves:.2f}",
                    f"{n / moves:.1f}",
                )
                for c, o, n, w in sorted(rows, key=lambda r: -r[1])[:12]
            ],
        ),
    ]
    return "\n".join(lines)


def _where(file: str, line: int, fn: str) -> str:
    path = Path(file)
    try:
        rel = path.resolve().relative_to(ROOT)
        if rel.parts[0] != ".venv":
            return f"{rel}:{line} {fn}"
    except ValueError:
        pass
    if "site-packages" in path.parts:
        i = path.parts.index("site-packages")
        return f"{'/'.join(path.parts[i + 1 :])}:{line} {fn}"
    return f"{path.name}:{line} {fn}" if line else fn


# -- the served app --------------------------------------------------------------


def _open_page(browser: Any, url: str, timeout_ms: float = 90_000) -> Any:
    """Open ``url`` in a new context; return the page once its websocket is open."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.add_init_script(WS_CLOCK)
    with page.expect_console_message(
        lambda m: "Websocket connection 0 is now open" in m.text, timeout=timeout_ms
    ):
        page.goto(url, timeout=timeout_ms)
    page.evaluate(PAGE_HELPERS)
    return page


# -- 2. slider to plot, in Chromium -----------------------------------------------

# The experiment of section 2b: the app as served, except that Panel handles the
# step slider's changes from the browser at once instead of after its 50 ms
# debounce (``Syncable._debounce``).
NO_DEBOUNCE_APP = """import panel as pn

from ui.app import create_app

pn.widgets.IntSlider._debounce = 0
create_app().servable(title="glassnet")
"""


@dataclass
class BrowserTab:
    """Slider moves on one visible tab, timed in the page."""

    marks: str = ""
    move_ms: list[float] = field(default_factory=list)
    to_send_ms: list[float] = field(default_factory=list)
    first_reply_ms: list[float] = field(default_factory=list)
    last_reply_ms: list[float] = field(default_factory=list)
    after_reply_ms: list[float] = field(default_factory=list)
    timeouts: int = 0
    note: str = ""


def measure_browser(
    server: AppServer,
    browser: Any,
    name: str,
    n_steps: int,
    n_moves: int,
    seed: int,
) -> dict[int, BrowserTab]:
    """Time slider moves on every tab of one session in Chromium."""
    rng = np.random.default_rng(seed)
    out: dict[int, BrowserTab] = {}
    for tab in range(N_TABS):
        res = out[tab] = BrowserTab()
        first, second = _random_steps(rng, n_steps, 2, 0)
        page = _open_page(browser, f"{server.url}?session={name}&tab={tab + 1}")
        try:
            page.wait_for_function(
                f"() => {{ const t = __gb.tabs(), s = __gb.slider();"
                f" return t && s && t.active === {tab}; }}",
                timeout=60_000,
            )
            page.wait_for_timeout(500)
            # Find the marks that follow the cursor: they show one step, then the next.
            which = "marks"
            if page.evaluate(MOVE_AND_WAIT, [first, "any", 6_000])[0] >= 0:
                page.wait_for_timeout(600)
                page.evaluate("(s) => { __gb.first = __gb.candidates(s); }", first)
                page.evaluate(MOVE_AND_WAIT, [second, "any", 10_000])
                page.wait_for_timeout(1000)
                res.marks = page.evaluate(FOLLOWING_MARKS, second)
            if not res.marks:
                which = "box"
                res.note = (
                    "no cursor mark: timed until the step box shows the step "
                    "(the server round trip alone)"
                )
                page.evaluate(MOVE_AND_WAIT, [second, "box", 10_000])
            for step in _random_steps(rng, n_steps, n_moves, second):
                ms, to_send, first, last = page.evaluate(
                    MOVE_AND_WAIT, [step, which, 10_000]
                )
                if ms < 0:
                    res.timeouts += 1
                    continue
                res.move_ms.append(ms)
                if to_send >= 0:
                    res.to_send_ms.append(to_send)
                    res.first_reply_ms.append(first)
                    res.last_reply_ms.append(last)
                    res.after_reply_ms.append(ms - to_send - last)
                page.wait_for_timeout(150)
        finally:
            page.context.close()
        say(f"browser {name} tab {tab + 1}: {_brief(res.move_ms)} {res.note}")
    return out


def _brief(values: list[float]) -> str:
    if not values:
        return "-"
    p = percentiles(values)
    return f"p50 {p['p50']:.0f} ms, p95 {p['p95']:.0f} ms (n={p['n']})"


# -- 3. memory per user ------------------------------------------------------------


@dataclass
class MemoryResult:
    """Server RSS (MB) by number of connected users, and after they left."""

    warm_mb: float = 0.0
    rss_mb: dict[int, float] = field(default_factory=dict)
    after_mb: float = 0.0
    after_wait_s: float = 0.0
    connect_s: dict[int, float] = field(default_factory=dict)
    sessions_made: int = 0
    sessions_discarded: int = 0

    def per_user_mb(self, n: int) -> float:
        """Return (RSS(n) - RSS(1)) / (n - 1)."""
        first = min(self.rss_mb)
        return (self.rss_mb[n] - self.rss_mb[first]) / (n - first)


def _visit_all_tabs(page: Any) -> None:
    """Show every tab in turn, as a user clicking through them would.

    Right after loading, the app may still apply the URL's ``tab`` and undo
    an early switch; a switch not taken within 15 s is made again.
    """
    page.wait_for_function("() => __gb.tabs() !== null", timeout=60_000)
    page.wait_for_timeout(1000)
    for tab in list(range(1, N_TABS)) + [0]:
        shown = (
            f"() => {{ const t = __gb.tabs(); return t.active === {tab} &&"
            f" __gb.kind(t.tabs[{tab}].child) !== 'Spacer'; }}"
        )
        for attempt in range(4):
            page.evaluate(f"() => {{ __gb.tabs().active = {tab}; }}")
            try:
                page.wait_for_function(shown, timeout=15_000)
                break
            except PlaywrightTimeout:
                if attempt == 3:
                    raise
        page.wait_for_timeout(300)


def measure_memory(
    folder: Path, name: str, users: tuple[int, ...], browser: Any, log: Path
) -> MemoryResult:
    """Connect browser users one by one and read the server's RSS."""
    out = MemoryResult()
    flags = (
        "--unused-session-lifetime", "2000", "--check-unused-sessions", "1000",
        # Bokeh logs discarded sessions at debug level only.
        "--log-level", "debug",
    )  # fmt: skip
    server = AppServer(folder, *flags, log=log)
    pages: list[Any] = []
    try:
        url = f"{server.url}?session={name}&tab=1"
        # One user comes and goes first, so imports and caches are warm.
        warm = _open_page(browser, url)
        _visit_all_tabs(warm)
        warm.context.close()
        time.sleep(6)
        out.warm_mb = server.rss_mb()
        for n in users:
            t0 = time.perf_counter()
            while len(pages) < n:
                page = _open_page(browser, url)
                _visit_all_tabs(page)
                pages.append(page)
            out.connect_s[n] = time.perf_counter() - t0
            time.sleep(3)
            out.rss_mb[n] = server.rss_mb()
            say(f"memory {name}: {n} users connected, RSS {out.rss_mb[n]:.0f} MB")
        for page in pages:
            page.context.close()
        pages.clear()
        # Sessions expire 2 s after their websocket closed, checked every 1 s.
        out.after_wait_s = 8.0
        time.sleep(out.after_wait_s)
        out.after_mb = server.rss_mb()
        text = log.read_text(errors="replace")
        out.sessions_made = text.count("ServerConnection created")
        out.sessions_discarded = text.count("Discarding session")
        say(f"memory {name}: all left, RSS {out.after_mb:.0f} MB")
    finally:
        for page in pages:
            page.context.close()
        server.stop()
    return out


# -- the report -------------------------------------------------------------------


def _table(head: tuple[str, ...] | list[str], rows: list[Any]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pcts(values: list[float]) -> tuple[str, str, str]:
    if not values:
        return ("-", "-", "-")
    p = percentiles(values)
    return (f"{p['p50']:.1f}", f"{p['p95']:.1f}", f"{p['max']:.1f}")


def _median(values: list[float]) -> str:
    return f"{np.median(values):.0f}" if values else "-"


def _tab_label(tab: int) -> str:
    from ui.tabs import TABS

    return f"{tab + 1} {TABS[tab].title}"


def render(r: dict[str, Any]) -> str:
    """Return the Markdown page for the results ``r``."""
    m, load = r["machine"], r["load"]
    parts = ["# glassnet app benchmark", ""]
    if r["quick"]:
        parts += [
            "> **Quick smoke run** (`--quick`): short session, few moves, few users. "
            "These numbers are not the reference results.",
            "",
        ]
    parts += [
        "Generated by `benchmarks/bench_app.py`; do not edit by hand. See "
        "[`benchmarks/README.md`](../benchmarks/README.md#the-app) for what each "
        "figure means.",
        "",
        f"- Command (from the repository root): `{r['command']}`",
        f"- Date: {m['date']} (whole run {r['total_s'] / 60:.1f} min)",
        f"- Code measured: commit {m['git']}; {r['ui_state']}",
        f"- Machine: {m['nproc']} CPUs (`nproc`; {m['affinity']} usable), "
        f"{m['cpu_model']}, {m['mem_gib']:.1f} GiB RAM, {m['platform']}",
        f"- Python {m['python']}, NumPy {m['numpy']}, {r['versions']}",
        f"- Load average (1, 5, 15 min) before: {_load(load['before'])}; at the end: "
        f"{_load(load['end'])}",
        f"- CPU time stolen by the hypervisor during the run: {load['steal']:.1f} %; "
        f"other processes kept {load['others']:.2f} CPUs busy on average (all CPU "
        "time in `/proc/stat` minus this benchmark's own processes, the served "
        "app and Chromium included)",
        f"- **{load['verdict']}**",
        "",
        "Sessions:",
        "",
        _table(
            ("file", "what", "steps", "events", "size"),
            [
                (f"`{name}`", s["title"], f"{s['steps']:,}", f"{s['events']:,}",
                 f"{s['size_mb']:.1f} MB")
                for name, s in r["sessions"].items()
            ],
        ),
    ]  # fmt: skip
    if r["failed"]:
        parts += ["", "**Parts that failed** (their results are missing):", ""]
        parts += [f"- {line}" for line in r["failed"]]
    parts += ["", _targets(r)]
    if r["server"]:
        parts += ["", _server_section(r)]
    if r["browser"]:
        parts += ["", _browser_section(r)]
    if r["no_debounce"]:
        parts += ["", _debounce_section(r)]
    if r["memory"]:
        parts += ["", _memory_section(r)]
    if r["server"]:
        parts += ["", _profiles_section(r)]
    return "\n".join(parts) + "\n"


def _load(v: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in v)


def targets(r: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Return (target, measured, met) for each target of issue 3."""
    rows = []
    for name in r["sessions"]:
        tabs = r["browser"].get(name, {})
        marked = {t: b for t, b in tabs.items() if b.marks}
        p95 = {t: np.percentile(b.move_ms, 95) for t, b in marked.items() if b.move_ms}
        timeouts = sum(b.timeouts for b in marked.values())
        if p95:
            worst = max(p95, key=lambda t: p95[t])
            text = f"worst tab {_tab_label(worst)}: {p95[worst]:.0f} ms"
            if timeouts:
                text += f"; {timeouts} moves timed out"
            ok = p95[worst] < BROWSER_P95_TARGET_MS and not timeouts
            target = (
                f"`{name}`: slider to plot, p95 < 100 ms on every tab with a "
                "cursor mark"
            )
            rows.append((target, text, ok))
        mem = r["memory"].get(name)
        if mem is not None and len(mem.rss_mb) > 1:
            n = max(mem.rss_mb)
            per = mem.per_user_mb(n)
            rows.append(
                (f"`{name}`: server memory per user < 20 MB",
                 f"{per:.1f} MB ({n} users, all tabs visited)", per < MEMORY_TARGET_MB)
            )  # fmt: skip
    return rows


def _targets(r: dict[str, Any]) -> str:
    body = [(t, v, "met" if ok else "**NOT met**") for t, v, ok in targets(r)]
    return "## Targets (issue 3)\n\n" + _table(("target", "measured", "result"), body)


def _server_section(r: dict[str, Any]) -> str:
    lines = [
        "## 1. Server side: one cursor move, in process",
        "",
        "The app (`ui.app.App`) built on a Bokeh Document in this process; each tab "
        f"made visible (`state.tab = i`), then {r['server_moves']} moves of "
        "`state.step` to random steps (after 3 warm-up moves). A move is timed "
        "until every watcher has returned and the document changes it made are "
        "serialized into one PATCH-DOC message (Panel sends the changes held "
        "during an update as one message per connection; the Bokeh server's "
        "share of the work), so that work is inside the time. No network, no "
        "browser. Milliseconds.",
        "",
    ]
    for name, res in r["server"].items():
        lines += [
            f"`{name}`: app built in {res.build_ms:.0f} ms, put on a document in "
            f"{res.doc_ms:.0f} ms.",
            "",
            _table(
                ("tab", "first shown", "p50", "p95", "max", "changes/move",
                 "patch kB/move", "models in doc"),
                [
                    (_tab_label(t), f"{x.show_ms:.0f}", *_pcts(x.move_ms),
                     f"{x.patches / len(x.move_ms):.1f}",
                     f"{x.patch_bytes / len(x.move_ms) / 1e3:.1f}", x.models)
                    for t, x in res.tabs.items()
                ],
            ),
            "",
        ]  # fmt: skip
    return "\n".join(lines).rstrip()


def _browser_section(r: dict[str, Any]) -> str:
    lines = [
        "## 2. Slider to plot, in Chromium",
        "",
        "`panel serve ui/app.py` on a loopback port, headless Chromium (Playwright), "
        "one fresh page per tab opened at `?session=<file>&tab=<n>`. In the page "
        "the step slider's Bokeh model gets a new `value` from JS; the clock stops "
        "in the first animation frame in which every cursor mark of the visible "
        "tab shows the new step. Cursor marks are found per tab: Spans and text "
        'models ("Step n") that followed two calibration moves. '
        f"{r['browser_moves']} random moves per tab, 150 ms apart. Milliseconds; "
        "a move that took over 10 s counts as a timeout.",
        "",
        "The last four columns split a move (medians), from the page's own clock "
        "on its websocket: *frame sent* is when the slider's change left the "
        "page; *first reply* and *last reply* are the first and the last frame "
        "received from the server before the marks showed the step, counted from "
        "the frame sent (so they hold the server's work, the loopback network and "
        "the page's handling of earlier frames); *drawn* is the rest, from the "
        "last frame received to the animation frame showing the step.",
        "",
    ]
    for name, tabs in r["browser"].items():
        lines += [
            f"`{name}`:",
            "",
            _table(
                ("tab", "cursor marks", "n", "p50", "p95", "max", "timeouts",
                 "frame sent", "first reply", "last reply", "drawn"),
                [
                    (_tab_label(t), x.marks or x.note, len(x.move_ms),
                     *_pcts(x.move_ms), x.timeouts, _median(x.to_send_ms),
                     _median(x.first_reply_ms), _median(x.last_reply_ms),
                     _median(x.after_reply_ms))
                    for t, x in tabs.items()
                ],
            ),
            "",
        ]  # fmt: skip
    return "\n".join(lines).rstrip()


def _debounce_section(r: dict[str, Any]) -> str:
    rows = []
    for name, tabs in r["no_debounce"].items():
        shipped = r["browser"].get(name, {})
        for t, x in tabs.items():
            before = shipped.get(t)
            rows.append(
                (f"`{name}`", _tab_label(t), x.marks or "step box", len(x.move_ms),
                 *_pcts(x.move_ms)[:2],
                 *(_pcts(before.move_ms)[:2] if before else ("-", "-")))
            )  # fmt: skip
    return "\n".join(
        [
            "## 2b. Experiment: the same without Panel's 50 ms debounce",
            "",
            "Panel waits 50 ms (`Syncable._debounce`) before it handles a change "
            "that came from the browser, so that a burst of changes is handled once. "
            "Every slider move pays it. This run serves the app with "
            "`pn.widgets.IntSlider._debounce = 0` and measures as in section 2 "
            "(the app as shipped keeps the debounce). Milliseconds.",
            "",
            _table(
                (
                    "session",
                    "tab",
                    "cursor marks",
                    "n",
                    "p50",
                    "p95",
                    "p50 shipped",
                    "p95 shipped",
                ),
                rows,
            ),  # fmt: skip
        ]
    )


def _memory_section(r: dict[str, Any]) -> str:
    users = r["users"]
    head = ["session", "after 1 user came and left"]
    head += [f"{n} user{'s' if n > 1 else ''}" for n in users]
    head += [f"per user ({n})" for n in users[1:]]
    head += ["all left, sessions expired"]
    rows = []
    for name, mem in r["memory"].items():
        row = [f"`{name}`", f"{mem.warm_mb:.0f}"]
        row += [f"{mem.rss_mb[n]:.0f}" for n in users]
        row += [f"{mem.per_user_mb(n):.1f}" for n in users[1:]]
        row += [
            f"{mem.after_mb:.0f} (after {mem.after_wait_s:.0f} s; "
            f"{mem.sessions_discarded} of {mem.sessions_made} sessions discarded)"
        ]
        rows.append(row)
    return "\n".join(
        [
            "## 3. Server memory per connected user",
            "",
            "A fresh `panel serve ui/app.py --unused-session-lifetime 2000 "
            "--check-unused-sessions 1000` per session file. One user opens the app "
            "and leaves first (imports, caches). Then users connect one by one, each "
            "in its own browser context; each shows all seven tabs once (tab 2 to 7, "
            "then back to 1), as a student clicking through would. RSS is the served "
            "process's `VmRSS` 3 s after the last user of a row connected; per user = "
            "(RSS(n) - RSS(1)) / (n - 1). MB.",
            "",
            _table(head, rows),
            "",
            "RSS rarely shrinks after sessions close (CPython's allocator keeps freed "
            "memory for reuse), so the last column shows whether memory was kept "
            "growing, not whether it was returned to the system.",
        ]
    )


def _profiles_section(r: dict[str, Any]) -> str:
    lines = ["## Where the server's time goes", ""]
    for name, res in r["server"].items():
        lines += [
            f"### `{name}`, tab {_tab_label(res.profile_tab)} (its highest server p95)",
            "",
            res.profile,
            "",
        ]
    return "\n".join(lines).rstrip()


# -- the command line -------------------------------------------------------------


def _versions() -> str:
    import bokeh
    import holoviews
    import panel
    import param

    return (
        f"Panel {panel.__version__}, HoloViews {holoviews.__version__}, "
        f"Bokeh {bokeh.__version__}, param {param.__version__}, Chromium "
        f"{_chromium_version()}"
    )


def _chromium_version() -> str:
    try:
        out = subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.strip().splitlines()[-1] if out.strip() else "unknown"


def _ui_state() -> str:
    try:
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "ui"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "ui/ state unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    if not changed:
        return "ui/ as committed"
    return "uncommitted changes in " + ", ".join(changed)


def _verdict(load: dict[str, Any], nproc: int) -> str:
    others = load["others"]
    if others >= 0.1 * nproc or load["steal"] >= 5.0:
        return (
            f"The machine was shared: other processes kept {others:.2f} of its "
            f"{nproc} CPUs busy on average (steal {load['steal']:.1f} %). "
            "Latencies include waiting for a CPU."
        )
    return (
        f"The machine was otherwise nearly idle: other processes used {others:.2f} "
        f"of its {nproc} CPUs on average (steal {load['steal']:.1f} %)."
    )


def _part(results: dict[str, Any], label: str, run: Any, *args: Any) -> Any:
    """Return ``run(*args)``; on failure note it for the report and return None."""
    try:
        return run(*args)
    except Exception as err:  # a failed part must not lose the others' results
        say(f"{label} FAILED: {err!r}")
        results["failed"].append(f"{label}: {type(err).__name__}: {err}")
        return None


def _browser_part(
    out: dict[str, Any],
    folder: Path,
    log: Path,
    app: Path | None,
    browser: Any,
    info: dict[str, dict[str, Any]],
    moves: int,
) -> None:
    """Serve the app (or ``app``) and time slider moves for every session."""
    server = AppServer(folder, app=app, log=log)
    try:
        for i, name in enumerate(info):
            out[name] = measure_browser(
                server, browser, name, info[name]["steps"], moves, seed=100 + i
            )
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the three measurements, write the report."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    cpu0 = CpuTimes.now()
    load: dict[str, Any] = {"before": os.getloadavg()}
    say(f"load average before: {load['before']}")
    not_used = {"torch": "-", "threads": 0, "interop_threads": 0, "pools": []}
    machine = machine_info(not_used)
    results: dict[str, Any] = {
        "quick": args.quick,
        "server_moves": args.server_moves,
        "browser_moves": args.browser_moves,
        "users": args.users,
        "server": {},
        "browser": {},
        "no_debounce": {},
        "memory": {},
        "failed": [],
    }
    with tempfile.TemporaryDirectory(prefix="glassnet-bench-app-") as tmp:
        folder = args.sessions or Path(tmp) / "sessions"
        logs = Path(tmp)
        results["sessions"] = info = prepare_sessions(folder, args.long_steps)
        names = list(info)

        if "server" in args.only:
            for i, name in enumerate(names):
                say(f"server side: {name}")
                res = _part(
                    results, f"server side, {name}", measure_server,
                    folder, name, args.server_moves, args.profile_moves, i,
                )  # fmt: skip
                if res is not None:
                    results["server"][name] = res
        if {"browser", "debounce", "memory"} & set(args.only):
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                try:
                    if "browser" in args.only:
                        _part(
                            results, "browser", _browser_part, results["browser"],
                            folder, logs / "serve-browser.log", None, browser, info,
                            args.browser_moves,
                        )  # fmt: skip
                    if "debounce" in args.only:
                        app = logs / "app_no_debounce.py"
                        app.write_text(NO_DEBOUNCE_APP, encoding="utf-8")
                        _part(
                            results, "no debounce", _browser_part,
                            results["no_debounce"], folder,
                            logs / "serve-no-debounce.log", app, browser, info,
                            max(args.browser_moves // 2, 5),
                        )  # fmt: skip
                    if "memory" in args.only:
                        for name in names:
                            log = logs / f"serve-memory-{name}.log"
                            res = _part(
                                results, f"memory, {name}", measure_memory,
                                folder, name, args.users, browser, log,
                            )  # fmt: skip
                            if res is not None:
                                results["memory"][name] = res
                finally:
                    browser.close()
    load["end"] = os.getloadavg()
    cpu1 = CpuTimes.now()
    load["steal"] = cpu1.steal_percent_since(cpu0)
    load["others"] = cpu1.others_cpu_since(cpu0)
    load["verdict"] = _verdict(load, machine["nproc"] or 1)
    machine["git"] = git_state(ROOT)
    results.update(
        machine=machine,
        load=load,
        versions=_versions(),
        ui_state=_ui_state(),
        command=shlex.join([".venv/bin/python", "benchmarks/bench_app.py", *args.argv]),
        total_s=time.perf_counter() - started,
    )
    page = render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print(page)
    say(f"wrote {args.out}")
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: a 10,000-step long session, few moves, 1 and 3 users",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="Markdown file to write (default docs/benchmarks-app.md; with --quick "
        "a file in the temp directory)",
    )
    p.add_argument("--long-steps", type=int, help="steps of the long session")
    p.add_argument("--server-moves", type=int, help="timed moves per tab, in process")
    p.add_argument("--browser-moves", type=int, help="timed moves per tab, in Chromium")
    p.add_argument(
        "--users",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        help="numbers of connected users for the memory rows, e.g. 1,5,10",
    )
    p.add_argument(
        "--sessions",
        type=Path,
        help="folder for the session files, kept and reused by the next run "
        "(default: a temporary folder, removed at the end)",
    )
    p.add_argument(
        "--only",
        default="server,browser,debounce,memory",
        help="comma-separated parts to run: server, browser, debounce, memory "
        "(default all)",
    )
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.profile_moves = defaults["profile_moves"]
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(args.only) - {"server", "browser", "debounce", "memory"}
    if unknown:
        p.error(
            f"--only takes server, browser, debounce and memory; got {sorted(unknown)}"
        )
    if (
        len(args.users) < 2
        or args.users[0] < 1
        or list(args.users) != sorted(args.users)
    ):
        p.error("--users needs at least two increasing counts, e.g. 1,5,10")
    if args.long_steps < 25:
        p.error("--long-steps must be >= 25")
    if args.out is None:
        if args.quick:
            args.out = Path(tempfile.gettempdir()) / "glassnet-benchmarks-app-quick.md"
        else:
            args.out = ROOT / "docs" / "benchmarks-app.md"
    args.argv = argv
    return args


if __name__ == "__main__":
    raise SystemExit(main())
