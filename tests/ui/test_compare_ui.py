"""Comparing the open run with another on tab 6, on one cursor."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import serve
from test_tab_training import _tiny

from sessions import Session
from sessions.fork import fork
from ui.compare import ComparePanel
from ui.state import AppState


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Return a folder with a run and a fork of it with a higher rate at step 3."""
    folder = tmp_path / "runs"
    folder.mkdir()
    parent = _tiny(folder / "open.session")
    with Session(parent) as p:
        fork(p, 3, folder / "hot.session", changes={"lr": 0.5}, title="hot <b>fork</b>")
    return folder


def test_the_panel_compares_and_follows_the_cursor(runs: Path) -> None:
    state = AppState(sessions_dir=str(runs))
    assert state.open(runs / "open.session")
    panel = ComparePanel(state=state)
    assert list(panel.choice.options.values()) == [str(runs / "hot.session")]
    assert not panel.plots.visible  # no figures until the first comparison
    assert panel.compare_with(str(runs / "hot.session"))
    result = panel.result
    assert result is not None and result.offset == 3 and result.first_step == 3
    text = panel.summary.object
    assert "hot &lt;b&gt;fork&lt;/b&gt;" in text and "<b>fork</b>" not in text
    assert "<td>lr</td><td>0.05</td><td>0.5</td>" in text
    assert "first differ at step 3" in text
    # The fork's curve is drawn on the open run's steps.
    assert list(panel.loss_b.data["x"])[0] == 3
    state.go_to(5)
    assert all(span.location == 5 for span in panel.spans)
    panel.go_to_difference()
    assert state.step == 3
    panel.clear()
    assert panel.other is None and not panel.plots.visible


def test_a_damaged_other_file_gives_a_message(runs: Path) -> None:
    (runs / "bad.session").write_bytes(b"not a session")
    state = AppState(sessions_dir=str(runs))
    assert state.open(runs / "open.session")
    panel = ComparePanel(state=state)
    assert str(runs / "bad.session") not in panel.choice.options.values()
    assert not panel.compare_with(str(runs / "bad.session"))
    assert "Cannot compare with bad.session" in state.message


@pytest.mark.ui
def test_comparing_in_the_browser(page: Any, runs: Path, open_app: Any) -> None:
    server = serve(runs)
    try:
        open_app(page, f"{server.url}?session=open.session&tab=6")
        choice = page.locator("select").filter(has_text="hot.session").first
        choice.wait_for(timeout=20_000)
        choice.select_option(label="hot <b>fork</b> (hot.session)")
        page.get_by_role("button", name="Compare", exact=True).click()
        first = page.locator(".glassnet-first-difference").first
        first.wait_for(timeout=20_000)
        assert "step 3" in first.inner_text()
        page.get_by_role(
            "button", name=re.compile("Go to the first difference")
        ).click()
        page.wait_for_url(re.compile(r"[?&]step=3(&|$)"), timeout=20_000)
    finally:
        server.stop()
