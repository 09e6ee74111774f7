"""Fixtures for the app tests: a recorded demo session, a served app, Chromium.

Browser tests use Debian's Chromium through pytest-playwright (never
``playwright install``).  A missing browser fails the tests; it never skips them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ui.served import CHROMIUM, CHROMIUM_ARGS, AppServer


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


def serve(folder: Path, *extra: str, timeout: float = 60.0) -> AppServer:
    """Serve ``ui/app.py`` on ``folder`` on a free port; fail the test if it cannot."""
    try:
        return AppServer(folder, *extra, timeout=timeout)
    except RuntimeError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def app_url(demo_dir: Path) -> Iterator[str]:
    """Serve the app on the demo folder for the whole test session; yield its URL."""
    server = serve(demo_dir)
    try:
        yield server.url
    finally:
        server.stop()


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
