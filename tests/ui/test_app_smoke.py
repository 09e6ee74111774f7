"""The served app opens on the demo session in Chromium and shows its seven tabs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ui

TAB_TITLES = [
    "Network",
    "Dataset",
    "Forward propagation",
    "Loss",
    "Training cycle",
    "Training results",
    "Analysis",
]


def test_app_opens_on_the_demo_and_shows_seven_tabs(page, app_url, open_app) -> None:
    open_app(page, app_url)
    for title in TAB_TITLES:
        page.get_by_text(title, exact=True).first.click()
