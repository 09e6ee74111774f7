"""The app follows a session another process is recording, and survives its death.

A separate process records a long run into the served folder; the app, opened
on that file, grows its step slider as steps are committed.  The writer is
then killed with SIGKILL halfway: the app keeps working, every committed step
still opens, and nothing shows an error.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import serve

from sessions import Session

pytestmark = pytest.mark.ui

CHILD = Path(__file__).parents[1] / "sessions" / "_record_child.py"

SLIDER_END = """() => {
  if (!window.Bokeh) return null;
  for (const doc of Bokeh.documents) {
    const seen = new Set(), stack = [...doc.roots()];
    while (stack.length) {
      const m = stack.pop(); if (seen.has(m)) continue; seen.add(m);
      for (const r of m.references()) stack.push(r);
    }
    for (const m of seen)
      if (m.constructor.__name__ === 'Slider' && m.title === 'Step') return m.end;
  }
  return null;
}"""


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_the_app_follows_another_writer_and_survives_its_death(
    page: Any, tmp_path: Path, open_app: Any
) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    out, side = folder / "live.session", tmp_path / "steps.txt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    writer = subprocess.Popen(
        [sys.executable, str(CHILD), str(out), str(side), "10"], env=env
    )
    server = serve(folder)
    try:
        deadline = time.monotonic() + 60
        while _lines(side) < 30:
            assert writer.poll() is None, "the writer stopped on its own"
            assert time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.1)
        open_app(page, f"{server.url}?session=live.session")
        page.wait_for_function(f"() => ({SLIDER_END})() > 0", timeout=30_000)
        first_end = page.evaluate(SLIDER_END)
        # The slider grows while the other process records (the app re-reads).
        page.wait_for_function(
            f"() => ({SLIDER_END})() > {first_end + 20}", timeout=30_000
        )
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
        time.sleep(2.5)  # a couple of the app's follow ticks
        end = page.evaluate(SLIDER_END)
        with Session(out) as session:
            committed = session.n_steps
            assert session.status != "completed"
        assert 0 < end <= committed - 1
        # Still working: a deep link to the last step the app shows opens it.
        open_app(page, f"{server.url}?session=live.session&step={end}&tab=3")
        page.wait_for_url(re.compile(rf"[?&]step={end}(&|$)"), timeout=20_000)
        handle = page.locator(".noUi-handle").first
        handle.focus()
        handle.press("ArrowLeft")
        page.wait_for_url(re.compile(rf"[?&]step={end - 1}(&|$)"), timeout=20_000)
        assert page.locator(".glassnet-message:visible").count() == 0
    finally:
        if writer.poll() is None:
            writer.kill()
        server.stop()
