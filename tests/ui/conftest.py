"""Fixtures for the app tests: a recorded demo session, a served app, Chromium.

Browser tests use Debian's Chromium through pytest-playwright (never
``playwright install``).  A missing browser fails the tests; it never skips them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GLASSNET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict:
    """Launch Debian's Chromium with the flags this machine needs."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No browser at {CHROMIUM}: install Debian's chromium "
            "(apt-get install chromium) or set GLASSNET_CHROMIUM."
        )
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a sessions folder holding the recorded demo session."""
    folder = tmp_path_factory.mktemp("sessions")
    from ui.cli import main

    assert main(["demo", "--out", str(folder / "demo.session")]) == 0
    return folder


def free_port() -> int:
    """Return a TCP port on the loopback interface that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(folder: Path, *extra: str, timeout: float = 60.0) -> tuple[str, Any]:
    """Start ``panel serve ui/app.py`` on a free port; return its URL and process."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "panel",
        "serve",
        str(ROOT / "ui" / "app.py"),
        "--port",
        str(port),
        "--address",
        "127.0.0.1",
        "--allow-websocket-origin",
        f"127.0.0.1:{port}",
        "--websocket-max-message-size",
        str(40 * 1024 * 1024),
        *extra,
    ]
    env = {**os.environ, "GLASSNET_SESSIONS": str(folder)}
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/app"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"panel serve exited with {proc.returncode}:\n{err}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/liveness", timeout=2):
                return url, proc
        except OSError:
            time.sleep(0.3)
    stop(proc)
    pytest.fail(f"panel serve did not answer on port {port} within {timeout} s")


def stop(proc: Any) -> None:
    """Stop a server started by :func:`serve` and everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def app_url(demo_dir: Path) -> Iterator[str]:
    """Serve the app on the demo folder for the whole test session; yield its URL."""
    url, proc = serve(demo_dir, "--liveness")
    try:
        yield url
    finally:
        stop(proc)


def _open_app(page: Any, url: str, timeout: float = 60_000) -> None:
    """Open ``url`` and wait until the app's websocket is connected."""
    with page.expect_console_message(
        lambda m: "Websocket connection 0 is now open" in m.text, timeout=timeout
    ):
        page.goto(url)


@pytest.fixture
def open_app() -> Any:
    """Return ``open_app(page, url)``: open the app and wait for its websocket."""
    return _open_app
