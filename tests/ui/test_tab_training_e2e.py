"""Tab 5 in Chromium: set the epochs, Train, watch the run grow, Stop.

The app is served on a copy of the demo folder, so the new session never
lands in the folder other tests share.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import serve

from sessions import Session, verify

pytestmark = pytest.mark.ui

# Set the value of the first Bokeh model of a type whose title matches.
SET_MODEL = """([type, title, value]) => {
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models)
      if (m.constructor.__name__ === type && m.title === title) {
        m.value = value; return true;
      }
  }
  return false;
}"""

STEP_END = """() => {
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.constructor.__name__ === 'Slider' && m.title === 'Step') return m.end;
  return null;
}"""


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, demo_dir: Path
) -> Iterator[tuple[str, Path]]:
    """Serve the app on a copy of the demo folder; yield (url, folder)."""
    folder = tmp_path_factory.mktemp("training")
    shutil.copy(demo_dir / "demo.session", folder / "demo.session")
    server = serve(folder)
    try:
        yield server.url, folder
    finally:
        server.stop()


def _steps_shown(page: Any) -> int:
    text = page.locator(".gn-progress").first.inner_text()
    return int(re.search(r"Step (\d+) of", text).group(1))


def test_train_shows_the_run_growing_and_stop_ends_it(
    page: Any, served: tuple[str, Path], open_app: Any
) -> None:
    url, folder = served
    open_app(page, f"{url}?tab=5")
    page.get_by_role("button", name="Train").wait_for(timeout=20_000)
    assert page.evaluate(SET_MODEL, ["Spinner", "Epochs", 20000])

    page.get_by_role("button", name="Train").click()
    page.locator(".gn-progress", has_text=re.compile(r"running: Step [1-9]")).wait_for(
        timeout=20_000
    )
    first = _steps_shown(page)
    page.wait_for_timeout(1200)
    second = _steps_shown(page)
    assert second > first
    # The cursor's slider grew with the run.
    assert page.evaluate(STEP_END) >= first - 1

    page.get_by_role("button", name="Stop").click()
    page.locator(".gn-progress", has_text="stopped: Step").wait_for(timeout=20_000)
    stopped_at = _steps_shown(page)
    assert second <= stopped_at < 20000

    # The file holds what ran and verifies.
    (path,) = [p for p in folder.glob("*.session") if p.name != "demo.session"]
    with Session(path) as s:
        assert s.status == "stopped"
        assert s.n_steps == stopped_at
    assert verify(path).ok


def test_epochs_typed_as_0_is_refused_not_replaced(
    page: Any, served: tuple[str, Path], open_app: Any
) -> None:
    # A bound on the widget made the browser put back the old value and train
    # a 30-epoch run; the typed value must reach Train and be refused.
    url, folder = served
    before = sorted(folder.glob("*.session"))
    open_app(page, f"{url}?tab=5")
    page.get_by_role("button", name="Train").wait_for(timeout=20_000)
    box = page.locator(".bk-input-group", has_text="Epochs").locator("input").first
    box.fill("0")
    box.press("Tab")
    page.wait_for_timeout(300)
    assert box.input_value() == "0"
    page.get_by_role("button", name="Train").click()
    page.get_by_text("Epochs must be a whole number >= 1; got 0").first.wait_for(
        timeout=10_000
    )
    assert sorted(folder.glob("*.session")) == before
