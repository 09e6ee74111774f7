"""The trust badge in Chromium: the chain state at once, then Verify with its result."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import serve

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def trust_url(
    tmp_path_factory: pytest.TempPathFactory, demo_dir: Path
) -> Iterator[str]:
    """Serve the demo session and a copy edited after recording; yield the URL."""
    folder = tmp_path_factory.mktemp("trust")
    shutil.copy(demo_dir / "demo.session", folder / "demo.session")
    edited = folder / "edited.session"
    shutil.copy(demo_dir / "demo.session", edited)
    con = sqlite3.connect(edited)
    with con:
        # One epoch's test accuracy, rounded as someone tidying the numbers would.
        con.execute(
            'UPDATE epochs SET test = \'{"loss":0.5,"accuracy":0.9}\' WHERE epoch = 4'
        )
    con.close()
    server = serve(folder)
    try:
        yield server.url
    finally:
        server.stop()


def test_an_unedited_session_is_shown_intact_and_verifies(
    page: Any, trust_url: str, open_app: Any
) -> None:
    open_app(page, f"{trust_url}?session=demo.session")
    chain = page.locator(".glassnet-trust-chain").first
    chain.wait_for(timeout=20_000)
    page.locator(".glassnet-trust-chain", has_text="hash chain intact").first.wait_for(
        timeout=20_000
    )
    assert "Unedited since recording" in chain.inner_text()
    page.get_by_role("button", name="Verify").click()
    result = page.locator(".glassnet-trust-result", has_text="Reproduces bit for bit")
    result.first.wait_for(timeout=120_000)
    assert "on this machine" in result.first.inner_text()


def test_an_edited_session_is_flagged_and_verify_says_where(
    page: Any, trust_url: str, open_app: Any
) -> None:
    open_app(page, f"{trust_url}?session=edited.session")
    chain = page.locator(".glassnet-trust-chain", has_text="edited after recording")
    chain.first.wait_for(timeout=20_000)
    # The failing link is the one holding epoch 5's row.
    epochs = re.search(r"epochs (\d+)\.\.(\d+) metrics", chain.first.inner_text())
    assert epochs is not None, chain.first.inner_text()
    assert int(epochs.group(1)) <= 5 <= int(epochs.group(2))
    page.get_by_role("button", name="Verify").click()
    result = page.locator(".glassnet-trust-result", has_text="Differs")
    result.first.wait_for(timeout=120_000)
    text = result.first.inner_text()
    assert "epoch 5 metrics" in text
    assert "changed after recording" in text
