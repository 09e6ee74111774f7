"""The served app in Chromium: tabs, scrubbing, play, operations, links, upload.

The app is started with ``glassnet serve`` on a copy of the demo folder, so
uploads and titles never touch the folder other tests share.
"""

from __future__ import annotations

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
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from sessions.library import set_title

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]
TAB_TITLES = [
    "Network",
    "Dataset",
    "Forward propagation",
    "Loss",
    "Training cycle",
    "Training results",
    "Analysis",
]

# Walk the client document from its roots (not all_models: it keeps replaced
# models) and return the first model of a type whose property matches.
MODEL_VALUE = """([type, key, value, prop]) => {
  if (!window.Bokeh) return null;
  for (const doc of Bokeh.documents) {
    const seen = new Set(), stack = [...doc.roots()];
    while (stack.length) {
      const m = stack.pop(); if (seen.has(m)) continue; seen.add(m);
      for (const r of m.references()) stack.push(r);
    }
    for (const m of seen)
      if (m.constructor.__name__ === type && (key === null || m[key] === value))
        return m[prop];
  }
  return null;
}"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Iterator[Any]:
    """Run ``glassnet serve`` on a copy of the demo folder; yield (url, folder)."""
    folder = tmp_path_factory.mktemp("served")
    shutil.copy(demo_dir / "demo.session", folder / "demo.session")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    glassnet = Path(sys.executable).with_name("glassnet")
    proc = subprocess.Popen(
        [str(glassnet), "serve", "--sessions", str(folder), "--port", str(port)]
        + ["--no-show"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/liveness", timeout=2
                ):
                    break
            except OSError:
                assert time.monotonic() < deadline, "glassnet serve did not answer"
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/app", folder
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _open(page: Any, open_app: Any, url: str) -> None:
    """Open the app and wait until its document (the step slider) is there."""
    open_app(page, url)
    page.wait_for_function(
        f"() => window.Bokeh && ({MODEL_VALUE})(['Slider', 'title', 'Step', 'value'])"
        " !== null"
    )


def _model(page: Any, type_: str, key: str, value: Any, prop: str) -> Any:
    return page.evaluate(MODEL_VALUE, [type_, key, value, prop])


def _step(page: Any) -> Any:
    return _model(page, "Slider", "title", "Step", "value")


def _wait_step(page: Any, step: int) -> None:
    page.wait_for_function(
        f"() => ({MODEL_VALUE})(['Slider', 'title', 'Step', 'value']) === {step}"
    )


def _active_tab(page: Any) -> Any:
    return _model(page, "Tabs", None, None, "active")


def _op_label(page: Any) -> str:
    return page.locator(".glassnet-op-text").first.inner_text()


def test_app_visits_every_tab_and_loads_nothing_from_outside(
    page: Any, served: Any, open_app: Any
) -> None:
    url, _ = served
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    _open(page, open_app, url)

    title = page.locator(".glassnet-title-text", has_text="Demo: Iris flowers")
    title.first.wait_for(timeout=10_000)
    assert title.first.text_content() == "Demo: Iris flowers, 4-16-3, Adam"
    # Start from the second tab: the first is already shown.
    for index in [*range(1, len(TAB_TITLES)), 0]:
        page.get_by_text(TAB_TITLES[index], exact=True).first.click()
        page.wait_for_url(re.compile(rf"[?&]tab={index + 1}(&|$)"))
        assert _active_tab(page) == index
    web = [u for u in requests if u.startswith(("http:", "https:", "ws:", "wss:"))]
    assert web, "the page made no requests at all"
    outside = [u for u in web if not u.startswith("http://127.0.0.1:")]
    assert outside == []


def test_keyboard_scrubs_steps_and_operations(
    page: Any, served: Any, open_app: Any
) -> None:
    url, _ = served
    _open(page, open_app, url)
    assert _step(page) == 0

    handle = page.locator(".noUi-handle").first
    handle.focus()
    for _ in range(3):
        handle.press("ArrowRight")
    _wait_step(page, 3)
    page.wait_for_url(re.compile(r"[?&]step=3(&|$)"))
    for key in ("session=demo.session", "op=0", "tab=1"):
        assert key in page.url  # the whole moment, ready to share
    assert "step 3): batch sampled" in _op_label(page)

    # Page-wide shortcuts, with no input focused.
    page.locator(".glassnet-op-text").first.click()
    page.keyboard.press("ArrowRight")
    _wait_step(page, 4)
    page.keyboard.press(".")
    expect_label(page, "Operation 1 (0 to")
    assert "weighted sum z of layer 1" in _op_label(page)
    page.keyboard.press("Shift+ArrowLeft")
    expect_label(page, "Operation 0 (0 to")
    page.keyboard.press("ArrowLeft")
    _wait_step(page, 3)


def expect_label(page: Any, text: str) -> None:
    """Wait until the operation label shows ``text``."""
    page.locator(".glassnet-op-text", has_text=text).first.wait_for(timeout=10_000)


def test_play_advances_the_step_and_pause_stops_it(
    page: Any, served: Any, open_app: Any
) -> None:
    url, _ = served
    _open(page, open_app, f"{url}?step=0")
    # The icon-only buttons have accessible names.
    page.get_by_role("button", name="Play (step through the run)", exact=True).click()
    page.wait_for_function(
        f"() => ({MODEL_VALUE})(['Slider', 'title', 'Step', 'value']) >= 3",
        timeout=15_000,
    )
    page.get_by_role("button", name="Pause", exact=True).click()
    page.wait_for_timeout(800)
    paused = _step(page)
    page.wait_for_timeout(1200)
    assert _step(page) == paused >= 3
    page.wait_for_url(re.compile(rf"[?&]step={paused}(&|$)"))  # written on pause
    assert f"step {paused})" in _op_label(page)


def test_next_operation_button_changes_the_label(
    page: Any, served: Any, open_app: Any
) -> None:
    url, _ = served
    _open(page, open_app, f"{url}?step=5&op=0")
    expect_label(page, "step 5): batch sampled")
    page.get_by_role("button", name="op ▶").click()
    expect_label(page, "weighted sum z of layer 1")
    page.get_by_role("button", name="op ▶").click()
    expect_label(page, "activation a = relu(z) of layer 1")
    page.wait_for_url(re.compile(r"[?&]op=2(&|$)"))


def test_deep_link_opens_that_moment(page: Any, served: Any, open_app: Any) -> None:
    url, _ = served
    _open(page, open_app, f"{url}?session=demo.session&step=7&op=3&tab=3")
    assert _step(page) == 7
    expect_label(page, "Operation 3 (0 to 19, step 7): weighted sum z of layer 2")
    assert _active_tab(page) == 2

    box = page.get_by_label("Go to step")  # typing an exact step
    box.fill("42")
    box.press("Enter")
    _wait_step(page, 42)
    expect_label(page, "step 42)")
    box.fill("500")  # outside the run: a message, and the box shows 42 again
    box.press("Enter")
    page.get_by_text("Step 500 is outside this run (0 to 119).").first.wait_for()
    # The box is set back on the server's next tick, after the message; clearing
    # it before then would be undone by that tick.
    expect(box).to_have_value("42")
    box.fill("")  # cleared: a message, no traceback
    box.press("Enter")
    page.get_by_text("Type a step from 0 to 119").first.wait_for()
    assert _step(page) == 42
    # The box is set back on the server's next tick, after the message.
    expect(box).to_have_value("42")
    assert page.get_by_text("Forward propagation", exact=True).first.is_visible()


def test_bad_link_shows_a_message_not_a_traceback(
    page: Any, served: Any, open_app: Any
) -> None:
    url, _ = served
    _open(page, open_app, f"{url}?step=abc&tab=12&session=../../etc/passwd")
    alert = page.locator(".glassnet-message").first
    alert.wait_for(timeout=10_000)
    text = alert.inner_text()
    assert "step='abc' in the link is not a whole number" in text
    assert "tab=12 is not a tab" in text
    assert "Traceback" not in page.content()
    assert _step(page) == 0


def test_upload_keeps_and_opens_the_session(
    page: Any, served: Any, open_app: Any, tmp_path: Path
) -> None:
    url, folder = served
    upload = tmp_path / "uploaded.session"
    shutil.copy(folder / "demo.session", upload)
    _open(page, open_app, url)
    page.locator("input[type=file]").first.set_input_files(str(upload))
    page.get_by_text("uploaded.session", exact=False).first.wait_for(timeout=15_000)
    assert (folder / "uploaded.session").read_bytes() == upload.read_bytes()
    page.wait_for_url(re.compile(r"[?&]session=uploaded.session(&|$)"))


def test_oversize_upload_is_refused_in_the_browser_and_the_page_keeps_working(
    page: Any, served: Any, open_app: Any, tmp_path: Path
) -> None:
    # 18.4 MiB: base64 makes it ~25 MB, over Bokeh's default 20 MB message limit.
    url, folder = served
    big = tmp_path / "big.session"
    big.write_bytes(b"\0" * int(18.4 * 2**20))
    _open(page, open_app, url)
    _wait_step(page, 0)
    page.locator("input[type=file]").first.set_input_files(str(big))
    page.get_by_text(
        "big.session is 18.4 MiB; the app accepts session files up to 12"
    ).first.wait_for(timeout=15_000)
    page.get_by_role("button", name="step ▶").click()
    _wait_step(page, 1)
    assert not (folder / "big.session").exists()


def test_damaged_deep_link_and_long_titles(
    page: Any, served: Any, open_app: Any
) -> None:
    url, folder = served
    cut = folder / "zz_cut.session"
    cut.write_bytes((folder / "demo.session").read_bytes()[:20_000])
    long_title = "x" * 150
    shutil.copy(folder / "demo.session", folder / "long.session")
    set_title(folder / "long.session", long_title)
    try:
        _open(page, open_app, f"{url}?session=zz_cut.session&step=3")
        alert = page.locator(".glassnet-message").first
        alert.wait_for()
        text = alert.inner_text()
        assert "zz_cut.session is damaged" in text
        assert str(folder) not in text
        _open(page, open_app, f"{url}?session=long.session")
        page.locator(".glassnet-title-text", has_text=long_title).wait_for()
        fits = "el => el.scrollWidth <= el.clientWidth + 1"
        for css in (".glassnet-title-text", ".glassnet-entry"):
            found = page.locator(css, has_text="x" * 40).all()
            assert found, css
            for el in found:
                assert el.evaluate(fits), css
    finally:
        cut.unlink()
        (folder / "long.session").unlink()
