"""Tabs 1 and 2 in Chromium: the network, its diagram, and the dataset views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.ui

CASES = Path(__file__).resolve().parents[3] / "shared" / "cases"

# Number of weight lines in the first data source holding an "x0" column.
EDGE_COUNT = """() => {
  if (!window.Bokeh) return null;
  for (const doc of Bokeh.documents) {
    const seen = new Set(), stack = [...doc.roots()];
    while (stack.length) {
      const m = stack.pop(); if (seen.has(m)) continue; seen.add(m);
      for (const r of m.references()) stack.push(r);
    }
    for (const m of seen) {
      if (m.constructor.__name__ !== 'ColumnDataSource') continue;
      const d = m.data, col = d instanceof Map ? d.get('x0') : d.x0;
      if (col !== undefined) return col.length;
    }
  }
  return null;
}"""


# Select unit 2 of the output column in every diagram, as a click on it would.
TAP_OUTPUT_UNIT = """() => {
  let n = 0;
  for (const doc of Bokeh.documents) {
    const seen = new Set(), stack = [...doc.roots()];
    while (stack.length) {
      const m = stack.pop(); if (seen.has(m)) continue; seen.add(m);
      for (const r of m.references()) stack.push(r);
    }
    for (const m of seen) {
      if (m.constructor.__name__ !== 'ColumnDataSource') continue;
      const d = m.data, get = (k) => (d instanceof Map ? d.get(k) : d[k]);
      const col = get('column'), unit = get('unit');
      if (col === undefined || unit === undefined) continue;
      for (let k = 0; k < col.length; k++)
        if (col[k] === 2 && unit[k] === 1) { m.selected.indices = [k]; n++; }
    }
  }
  return n;
}"""


def test_network_and_dataset_tabs_show_the_session(
    page: Any, app_url: str, open_app: Any
) -> None:
    open_app(page, f"{app_url}?tab=3")
    page.get_by_text("Network", exact=True).first.click()
    page.get_by_text("Network of the open session").first.wait_for(timeout=20_000)
    page.get_by_text("The network is ready for the next run.").first.wait_for(
        timeout=5_000
    )
    page.get_by_text("16 × 3 + 3").first.wait_for(timeout=5_000)
    page.get_by_role("button", name="Edit as new network").wait_for(timeout=5_000)
    # The demo is 4-16-3: 64 + 48 weights in each of the two diagrams.
    page.wait_for_function(f"() => ({EDGE_COUNT})() === 112", timeout=10_000)

    # Clicking a unit of the design diagram offers to set its bias by hand.
    assert page.evaluate(TAP_OUTPUT_UNIT) == 2
    page.get_by_text("Starting value of bias").first.wait_for(timeout=10_000)
    value = page.locator(".bk-input-group", has_text="Starting value").locator("input")
    value.fill("0.75")
    value.press("Enter")
    page.get_by_role("button", name="Set value", exact=True).click()
    page.get_by_text("b2[2] = 0.75").first.wait_for(timeout=10_000)

    page.get_by_text("Dataset", exact=True).first.click()
    page.get_by_text("iris (the open session's dataset)").first.wait_for(timeout=20_000)
    page.get_by_text("Feature statistics").first.wait_for(timeout=5_000)
    page.get_by_text("Class balance").first.wait_for(timeout=5_000)
    page.get_by_text("versicolor").first.wait_for(timeout=5_000)

    # Loading a built-in set replaces what the tab shows.
    page.get_by_role("button", name="Use this dataset").click()
    page.get_by_text("160 training rows, 40 test rows").first.wait_for(timeout=20_000)

    # A CSV upload: a bad file shows the importer's message, a good one its report.
    page.get_by_text("CSV file", exact=True).first.click()
    upload = page.locator("input[type=file]").last  # the first is the sidebar's
    upload.set_input_files(str(CASES / "case31.csv"))
    page.get_by_text("x1: 2 missing (rows 2, 4)").first.wait_for(timeout=20_000)
    upload.set_input_files(str(CASES / "case15.csv"))
    page.get_by_text("Read case15.csv").first.wait_for(timeout=20_000)
    page.get_by_text("Very Good → 4").first.wait_for(timeout=5_000)
