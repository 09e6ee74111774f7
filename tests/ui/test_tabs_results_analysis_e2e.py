"""Tabs 6 and 7 in Chromium: they draw, and follow the cursor in the browser."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ui.state import AppState
from ui.tabs.results import ResultsTab

pytestmark = pytest.mark.ui

# Read a property of every model of one type reachable from the document roots
# (not all_models, which keeps replaced models).
MODEL_VALUES = """([type, prop]) => {
  if (!window.Bokeh) return [];
  const out = [];
  for (const doc of Bokeh.documents) {
    const seen = new Set(), stack = [...doc.roots()];
    while (stack.length) {
      const m = stack.pop(); if (seen.has(m)) continue; seen.add(m);
      for (const r of m.references()) stack.push(r);
    }
    for (const m of seen) if (m.constructor.__name__ === type) out.push(m[prop]);
  }
  return out;
}"""

CURSOR_RED = "#d62728"


def _spans_at(page: Any, step: int) -> None:
    """Wait until every cursor line in the page is drawn at ``step``."""
    page.wait_for_function(
        f"""() => {{
          const colors = ({MODEL_VALUES})(['Span', 'line_color']);
          const where = ({MODEL_VALUES})(['Span', 'location']);
          const ours = where.filter((_, i) => colors[i] === '{CURSOR_RED}');
          return ours.length > 0 && ours.every(x => x === {step});
        }}""",
        timeout=20_000,
    )


def _expected_accuracy(demo_dir: Path, step: int) -> str:
    state = AppState()
    assert state.open(demo_dir / "demo.session")
    tab = ResultsTab(state=state)
    state.go_to(step)
    return f"{tab.accuracy('train'):.4f}"


def test_results_and_analysis_tabs_follow_the_cursor(
    page: Any, app_url: str, open_app: Any, demo_dir: Path
) -> None:
    open_app(page, f"{app_url}?step=3&tab=6")
    accuracy = page.locator(".glassnet-accuracy-train").first
    accuracy.wait_for(timeout=20_000)
    assert accuracy.inner_text() == _expected_accuracy(demo_dir, 3)
    _spans_at(page, 3)

    # Scrub one step with the keyboard: the numbers and the cursor lines follow.
    handle = page.locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    page.wait_for_url(re.compile(r"[?&]step=4(&|$)"))
    expected = _expected_accuracy(demo_dir, 4)
    page.locator(".glassnet-accuracy-train", has_text=expected).first.wait_for()
    _spans_at(page, 4)

    page.get_by_text("Analysis", exact=True).first.click()
    page.wait_for_url(re.compile(r"[?&]tab=7(&|$)"))
    verdicts = page.locator(".glassnet-verdicts").first
    verdicts.wait_for(timeout=20_000)
    assert re.search(r"healthy|vanishing|exploding", verdicts.inner_text())
    _spans_at(page, 4)
    handle.press("ArrowRight")
    _spans_at(page, 5)
