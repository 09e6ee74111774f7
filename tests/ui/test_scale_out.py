"""glassnet behind Debian's nginx, as ``deploy/run-local.sh`` serves it.

Two app processes (``glassnet serve --num-procs 2 --process-ports``) behind
nginx with the configuration in ``deploy/nginx/``, on loopback ports.  Browsers
open the app through nginx: each gets a working app, every request of one
browser (page, static files, websocket) reaches one process, and new browsers
are spread over both.  nginx is never installed here: a missing nginx fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ui.cli import main
from ui.served import free_port

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]
NGINX = Path("/usr/sbin/nginx")
ROUTE = "glassnet_route"
UPSTREAM = "x-glassnet-upstream"
LOG_LINE = re.compile(
    r"route=(?P<route>\S+) upstream=(?P<upstream>\S+) status=(?P<status>\d+) "
    r'"(?P<method>\S+) (?P<path>\S+)'
)


@dataclass(frozen=True)
class Proxied:
    """The app behind nginx: its address, the processes' addresses, the logs."""

    base: str
    upstreams: frozenset[str]
    run: Path

    @property
    def url(self) -> str:
        """The app's address through nginx."""
        return f"{self.base}/app"


@pytest.fixture(scope="module")
def proxied(
    tmp_path_factory: pytest.TempPathFactory, demo_dir: Path
) -> Iterator[Proxied]:
    """Start ``deploy/run-local.sh --procs 2`` on a copy of the demo folder."""
    if not NGINX.exists():
        pytest.fail(
            f"No nginx at {NGINX}: install Debian's nginx (apt-get install -y "
            "nginx); the scale-out tests run the app behind it."
        )
    folder = tmp_path_factory.mktemp("scale-out")
    shutil.copy(demo_dir / "demo.session", folder / "demo.session")
    run = folder / "run"
    port, app_port = _free_ports()
    glassnet = Path(sys.executable).with_name("glassnet")
    log = (folder / "run-local.log").open("w+b")
    proc = subprocess.Popen(
        [str(ROOT / "deploy" / "run-local.sh"), "--procs", "2", "--port", str(port),
         "--app-port", str(app_port), "--sessions", str(folder), "--run", str(run)],
        env={**os.environ, "GLASSNET": str(glassnet)},
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/glassnet"
    try:
        deadline = time.monotonic() + 90
        while not _answers(f"{base}/liveness"):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"run-local.sh did not serve:\n{log.read().decode()}")
            time.sleep(0.5)
        upstreams = frozenset(f"127.0.0.1:{app_port + 1 + i}" for i in range(2))
        yield Proxied(base, upstreams, run)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            # The script could not stop the app's own process group: do it here.
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                os.killpg(int((run / "glassnet.pid").read_text()), signal.SIGKILL)
        log.close()


def test_nginx_spreads_new_browsers_and_keeps_each_on_one_process(
    proxied: Proxied,
) -> None:
    # Requests without the route cookie: nginx picks a process and sets one.
    routes: dict[str, str] = {}
    for _ in range(24):
        headers = _get(f"{proxied.base}/liveness")
        routes[_route(headers)] = headers[UPSTREAM]
    assert set(routes.values()) == proxied.upstreams  # both processes serve

    # With the cookie, every request reaches the process that set it.
    for route, upstream in list(routes.items())[:6]:
        for path in ("/liveness", "/static/js/bokeh.min.js"):
            headers = _get(f"{proxied.base}{path}", cookie=f"{ROUTE}={route}")
            assert headers[UPSTREAM] == upstream
            assert _route(headers) == route

    # Bokeh serves its icon outside the prefix; nginx maps it back.
    assert _get(f"{proxied.base}/favicon.ico")["content-type"] == "image/x-icon"


def test_browsers_through_nginx_get_working_apps_each_on_one_process(
    proxied: Proxied, browser: Any
) -> None:
    # Two new browsers, and two returning ones whose route cookies nginx gave
    # to one process each, so both processes serve a browser whatever the
    # new browsers draw.
    returning = _route_per_upstream(proxied)
    cookies: list[str | None] = [None, None, *returning.values()]
    users = []
    for index, cookie in enumerate(cookies):
        context = browser.new_context()
        if cookie is not None:
            context.add_cookies([{"name": ROUTE, "value": cookie, "url": proxied.url}])
        page = context.new_page()
        problems: list[str] = []
        _watch(page, problems)
        step = 2 * index
        response = page.goto(f"{proxied.url}?step={step}")
        users.append((context, page, problems, step, response.headers[UPSTREAM]))

    routes: dict[str, str] = {}
    for context, page, problems, step, upstream in users:
        _label(page, f"step {step})")
        handle = page.locator(".noUi-handle").first
        handle.focus()
        handle.press("ArrowRight")
        _label(page, f"step {step + 1})")
        page.wait_for_url(re.compile(rf"[?&]step={step + 1}(&|$)"))
        assert problems == []
        route = next(c["value"] for c in context.cookies() if c["name"] == ROUTE)
        routes[route] = upstream
    for context, *_ in users:
        context.close()

    assert set(routes.values()) == proxied.upstreams  # both processes serve
    lines = _log_lines(proxied.run / "access.log", set(routes))
    for route, upstream in routes.items():
        mine = [line for line in lines if line["route"] == route]
        assert {line["upstream"] for line in mine} == {upstream}, mine
        assert [line for line in mine if int(line["status"]) >= 400] == []
        assert any(line["path"].startswith("/glassnet/static/") for line in mine)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-procs", "-1"], "--num-procs takes 1 or more processes"),
        (["--process-ports", "6001"], "--process-ports needs --num-procs 2 or more"),
        (
            ["--num-procs", "3", "--process-ports", "5999", "--port", "6001"],
            "include --port 6001",
        ),
        (
            ["--num-procs", "2", "--process-ports", "65535"],
            "needs ports 1 to 65535; got 65535 to 65536",
        ),
        (["--prefix", "/a b"], "--prefix takes a URL path"),
        (["--prefix", "/../x"], "--prefix takes a URL path"),
    ],
)
def test_serve_refuses_bad_process_and_proxy_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    folder = tmp_path / "sessions"
    assert main(["serve", "--sessions", str(folder), "--no-show", *flags]) == 1
    assert message in capsys.readouterr().err
    assert list(folder.iterdir()) == []  # refused before recording the demo


def test_class_site_config_passes_nginx_check(tmp_path: Path) -> None:
    # Debian's layout: the snippets in snippets/, the site inside http {}.
    if not NGINX.exists():
        pytest.fail(f"No nginx at {NGINX}: apt-get install -y nginx.")
    conf = tmp_path / "conf"
    (conf / "snippets").mkdir(parents=True)
    for name in ("glassnet-maps.conf", "glassnet-proxy.conf"):
        shutil.copy(ROOT / "deploy" / "nginx" / name, conf / "snippets" / name)
    site = (ROOT / "deploy" / "nginx" / "glassnet-site.conf").read_text()
    # No certificate here: check the rest over plain HTTP.
    site = re.sub(r"(?m)^\s*ssl_certificate.*$", "", site).replace(" ssl http2;", ";")
    (conf / "glassnet").write_text(site)
    temp = " ".join(
        f"{name}_temp_path {tmp_path}/{name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (conf / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\n"
        f"http {{ {temp} access_log off; include glassnet; }}\n"
    )
    check = subprocess.run(
        [str(NGINX), "-t", "-c", str(conf / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "test is successful" in check.stderr


# -- helpers ----------------------------------------------------------------


def _free_ports() -> tuple[int, int]:
    """Return a free port for nginx and A with A, A+1, A+2 free for the app."""
    for _ in range(50):
        app_port = free_port()
        sockets = []
        try:
            for port in (app_port + 1, app_port + 2):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        nginx_port = free_port()
        if nginx_port not in range(app_port, app_port + 3):
            return nginx_port, app_port
    pytest.fail("found no three free loopback ports in a row")


def _answers(url: str) -> bool:
    """Return whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _get(url: str, cookie: str | None = None) -> dict[str, str]:
    """GET ``url`` (with ``cookie``) and return the headers, names in lower case."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200, url
        return {k.lower(): v for k, v in response.headers.items()}


def _route(headers: dict[str, str]) -> str:
    """Return the route cookie nginx set in ``headers``."""
    match = re.match(rf"{ROUTE}=([0-9a-f]+);", headers.get("set-cookie", ""))
    assert match, headers
    return match.group(1)


def _route_per_upstream(proxied: Proxied) -> dict[str, str]:
    """Return one route cookie nginx gave to each app process."""
    found: dict[str, str] = {}
    for _ in range(40):
        headers = _get(f"{proxied.base}/liveness")
        found.setdefault(headers[UPSTREAM], _route(headers))
        if set(found) == proxied.upstreams:
            return found
    pytest.fail(f"nginx sent 40 new browsers to {sorted(found)} only")


def _watch(page: Any, problems: list[str]) -> None:
    """Collect the page's errors, failed requests and requests leaving the host."""
    page.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
    )
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(
                ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")
            )
            else problems.append(f"outside: {r.url}")
        ),
    )


def _label(page: Any, text: str) -> None:
    """Wait until the operation label, set by the server, shows ``text``."""
    page.locator(".glassnet-op-text", has_text=text).first.wait_for(timeout=60_000)


def _log_lines(path: Path, routes: set[str]) -> list[dict[str, str]]:
    """Return nginx's access log once it holds the websocket of every route.

    nginx writes a websocket's line when it closes, just after its tab.
    """
    deadline = time.monotonic() + 30
    while True:
        lines = [m.groupdict() for m in map(LOG_LINE.search, _read(path)) if m]
        closed = {
            line["route"]
            for line in lines
            if line["path"].split("?")[0] == "/glassnet/app/ws"
            and line["status"] == "101"
        }
        if routes <= closed:
            return lines
        assert time.monotonic() < deadline, f"no websocket logged for {routes - closed}"
        time.sleep(0.3)


def _read(path: Path) -> list[str]:
    """Return the lines of ``path``, none if it does not exist yet."""
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []
