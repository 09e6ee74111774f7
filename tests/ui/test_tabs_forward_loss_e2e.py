"""Tabs 3 and 4 in Chromium: the expansions appear and the loss cursor line moves."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.ui

# The first Span reachable from the document roots (its location).
SPAN_LOCATION = """() => {
  if (!window.Bokeh) return null;
  for (const doc of Bokeh.documents) {
    const seen = new Set(), stack = [...doc.roots()];
    while (stack.length) {
      const m = stack.pop(); if (seen.has(m)) continue; seen.add(m);
      for (const r of m.references()) stack.push(r);
    }
    for (const m of seen) if (m.constructor.__name__ === 'Span') return m.location;
  }
  return null;
}"""


def test_forward_and_loss_tabs_show_expansions_and_follow_the_cursor(
    page: Any, app_url: str, open_app: Any
) -> None:
    open_app(page, f"{app_url}?step=4&tab=3")
    page.get_by_text("z_1 = sum_i a_prev_i × W_i1 + b_1").first.wait_for(timeout=20_000)
    page.get_by_text("a_1 = max(0, ").first.wait_for(timeout=5_000)

    page.get_by_text("Loss", exact=True).first.click()
    page.get_by_text("data loss = 1/32 × (").first.wait_for(timeout=20_000)
    page.wait_for_function(f"() => ({SPAN_LOCATION})() === 4", timeout=10_000)

    handle = page.locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    page.wait_for_function(f"() => ({SPAN_LOCATION})() === 5", timeout=10_000)
