"""Serve the app in a child process and find Debian's Chromium for driving it.

Shared by the browser tests, the app benchmark and the screenshot script, so
all three start the server, and launch the browser, the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "WEBSOCKET_MAX_BYTES", "AppServer", "free_port"]

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = os.environ.get("GLASSNET_CHROMIUM", "/usr/bin/chromium")
"""Debian's Chromium (``playwright install`` cannot fetch a browser here)."""

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
"""Flags Chromium needs on a machine without a screen or outside network."""

WEBSOCKET_MAX_BYTES = 40 * 1024 * 1024
"""The websocket message limit ``glassnet serve`` uses (room for a 20 MiB CSV)."""


def free_port() -> int:
    """Return a TCP port on the loopback interface that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppServer:
    """``panel serve`` of the app on a free loopback port, in its own process group.

    Parameters
    ----------
    folder : Path
        The sessions folder (``GLASSNET_SESSIONS``).
    *extra : str
        More ``panel serve`` arguments.
    app : Path or None
        The app module to serve (default ``ui/app.py``).
    log : Path or None
        Where the server's output goes (default: a temporary file).
    timeout : float
        Seconds to wait for the server to answer.

    Raises
    ------
    RuntimeError
        If the server exits or does not answer in time; the message ends with
        the server's last output.
    """

    def __init__(
        self,
        folder: Path,
        *extra: str,
        app: Path | None = None,
        log: Path | None = None,
        timeout: float = 90.0,
    ) -> None:
        app = app or ROOT / "ui" / "app.py"
        port = free_port()
        cmd = [
            sys.executable, "-m", "panel", "serve", str(app),
            "--port", str(port), "--address", "127.0.0.1",
            "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness",
            "--websocket-max-message-size", str(WEBSOCKET_MAX_BYTES), *extra,
        ]  # fmt: skip
        env = {**os.environ, "GLASSNET_SESSIONS": str(folder), "PYTHONPATH": str(ROOT)}
        self._log: IO[bytes] = (
            log.open("w+b") if log else tempfile.TemporaryFile()  # noqa: SIM115
        )
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.port = port
        self.url = f"http://127.0.0.1:{port}/{app.stem}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"panel serve exited with {code}:\n{self._stop()}")
            try:
                live = f"http://127.0.0.1:{port}/liveness"
                with urllib.request.urlopen(live, timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        msg = f"panel serve did not answer on port {port} within {timeout} s"
        raise RuntimeError(f"{msg}:\n{self._stop()}")

    def rss_mb(self) -> float:
        """Return the server process's resident set size in MB (VmRSS)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        """Stop the server and everything it started."""
        self._stop()

    def _stop(self) -> str:
        """Stop the server; return the end of its output."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        if self._log.closed:
            return ""
        self._log.flush()
        self._log.seek(0)
        tail = self._log.read()[-4000:].decode(errors="replace")
        self._log.close()
        return tail
