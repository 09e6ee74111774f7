"""Save a screenshot of every tab of the app under docs/img/ (for the README).

Records the demo session into a temporary folder, serves the app on it on a
free loopback port, opens each tab in headless Debian Chromium (never
``playwright install``) at a deep link that shows real content, waits until the
websocket is open and every plot is drawn, and saves one PNG per tab, plus one
of tab 5 while a run is training live.  Re-run it after changing a tab::

    .venv/bin/python scripts/screenshots.py            # all shots
    .venv/bin/python scripts/screenshots.py --only 3   # just tab 3

The browser is ``/usr/bin/chromium`` unless ``GLASSNET_CHROMIUM`` names another.
PNGs are reduced to an 8-bit palette so each stays small.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
VIEWPORT = {"width": 1400, "height": 900}

# (file name, tab, step, op): the moment each shot shows.  Step 60 of the demo
# (epoch 16 of 30, mini-batches of 32) is mid-training; ops are numbered as in
# the app's operation list: 0 batch, 1 z of layer 1, 2 a of layer 1, 3 z of
# layer 2, 4 a of layer 2, 5 loss, 6-13 gradients, 14-17 updates, 18 step done.
SHOTS = [
    ("tab1-network.png", 1, 60, 3),
    ("tab2-dataset.png", 2, 60, 0),
    ("tab3-forward.png", 3, 60, 1),
    ("tab4-loss.png", 4, 60, 5),
    ("tab5-training.png", 5, 60, 14),
    ("tab6-results.png", 6, 100, 18),
    ("tab7-analysis.png", 7, 100, 18),
]
LIVE = "tab5-training-live.png"

# True once every Bokeh document and view is idle and Panel shows no spinner.
IDLE = """() => {
  if (!window.Bokeh || !Bokeh.documents || Bokeh.documents.length === 0) return false;
  if (!Bokeh.documents.every(d => d.is_idle)) return false;
  for (const v of Bokeh.index.roots) if (!v.is_idle) return false;
  return document.querySelectorAll('.pn-loading').length === 0;
}"""

# How many pixels the app's scrolling main area holds below the window.
HIDDEN_HEIGHT = """() => {
  let most = 0;
  for (const e of document.querySelectorAll('*')) {
    const overflow = getComputedStyle(e).overflowY;
    if (overflow === 'auto' || overflow === 'scroll')
      most = Math.max(most, e.scrollHeight - e.clientHeight);
  }
  return most;
}"""

# Set the value of the first Bokeh widget of a type whose title matches.
SET_MODEL = """([type, title, value]) => {
  for (const doc of Bokeh.documents)
    for (const m of doc.all_models)
      if (m.constructor.__name__ === type && m.title === title) {
        m.value = value; return true;
      }
  return false;
}"""


def settle(page: Any, quiet: float = 1.5) -> None:
    """Wait until the page is idle, twice, ``quiet`` seconds apart."""
    for _ in range(2):
        page.wait_for_function(IDLE, timeout=60_000)
        page.wait_for_timeout(quiet * 1000)


def open_app(page: Any, url: str) -> None:
    """Open ``url``, wait for the websocket, then for every plot to be drawn."""
    with page.expect_console_message(
        lambda m: "Websocket connection 0 is now open" in m.text, timeout=60_000
    ):
        page.goto(url)
    settle(page)


def save(page: Any, name: str, max_height: int = 4000) -> Path:
    """Save the page as ``name``, the window grown to show a long tab whole.

    The app scrolls inside its main area, not the document, so a full-page
    screenshot would stop at the window; the window is made taller instead.
    """
    path = OUT / name
    hidden = int(page.evaluate(HIDDEN_HEIGHT))
    if hidden > 0:
        height = min(VIEWPORT["height"] + hidden, max_height)
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        settle(page, quiet=1.0)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)
    shrink(path)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB")
    return path


def shrink(path: Path) -> None:
    """Reduce a PNG to an 8-bit palette (if Pillow is installed)."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def shoot_tabs(page: Any, url: str, only: set[int]) -> None:
    """Save one screenshot per tab at its deep link."""
    for name, tab, step, op in SHOTS:
        if only and tab not in only:
            continue
        open_app(page, f"{url}?session=demo.session&step={step}&op={op}&tab={tab}")
        save(page, name)


def shoot_live(page: Any, url: str, epochs: int = 3000) -> None:
    """Start a run on tab 5, screenshot it while it trains, then stop it."""
    open_app(page, f"{url}?session=demo.session&tab=5")
    page.get_by_role("button", name="Train").wait_for(timeout=20_000)
    if not page.evaluate(SET_MODEL, ["Spinner", "Epochs", epochs]):
        raise SystemExit("No 'Epochs' field on tab 5; update scripts/screenshots.py.")
    page.get_by_role("button", name="Train").click()
    running = re.compile(r"running: Step [1-9]")
    page.locator(".gn-progress", has_text=running).wait_for(timeout=30_000)
    page.wait_for_timeout(2500)
    save(page, LIVE)
    page.get_by_role("button", name="Stop").click()
    page.locator(".gn-progress", has_text="stopped").wait_for(timeout=30_000)


def main(argv: list[str] | None = None) -> int:
    """Record the demo, serve the app and save the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        type=int,
        action="append",
        default=[],
        help="save only this tab's shots (1-7; repeatable)",
    )
    args = parser.parse_args(argv)
    only = set(args.only)
    from ui.served import CHROMIUM, CHROMIUM_ARGS, AppServer

    if not Path(CHROMIUM).exists():
        msg = f"No browser at {CHROMIUM}: apt-get install chromium, or set "
        raise SystemExit(msg + "GLASSNET_CHROMIUM to another Chromium.")
    from playwright.sync_api import sync_playwright

    from ui.cli import main as glassnet

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="glassnet-shots-") as tmp:
        folder = Path(tmp)
        if glassnet(["demo", "--out", str(folder / "demo.session")]) != 0:
            raise SystemExit("Recording the demo failed; see the message above.")
        try:
            server = AppServer(folder)
        except RuntimeError as err:
            raise SystemExit(str(err)) from err
        url = server.url
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport=VIEWPORT)
                shoot_tabs(page, url, only)
                if not only or 5 in only:
                    shoot_live(page, url)
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
