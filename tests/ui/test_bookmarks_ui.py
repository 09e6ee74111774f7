"""Automatic bookmarks in the app: the jump list, tab 7's note, the browser."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import serve

from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import Session, record
from sessions.bookmarks import find_bookmarks
from sessions.datasets import load_dataset
from ui.bookmarks import BookmarkBar, bookmark_note
from ui.state import AppState
from ui.tabs.analysis import AnalysisTab


@pytest.fixture(scope="module")
def hot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder with a run that kills a unit and then diverges."""
    folder = tmp_path_factory.mktemp("bookmarks")
    record(
        NetworkSpec(4, (LayerSpec(8, "relu"), LayerSpec(3, "softmax"))),
        TrainingConfig(loss="cce", optimizer="sgd", lr=200.0, epochs=30, batch_size=16),
        load_dataset("iris", seed=1),
        folder / "hot.session",
    )
    return folder


def test_the_bar_lists_the_bookmarks_and_jumps_to_the_analysis_tab(
    hot_dir: Path,
) -> None:
    state = AppState()
    bar = BookmarkBar(state=state)
    assert bar.select.disabled
    assert state.open(hot_dir / "hot.session")
    marks = state.bookmarks
    kinds = {m.kind for m in marks}
    assert {"nonfinite", "dead_unit"} <= kinds
    labels = list(bar.select.options)[1:]
    assert labels == [f"step {m.step} · {m.title}" for m in marks]

    dead = next(i for i, m in enumerate(marks) if m.kind == "dead_unit")
    bar.select.value = dead
    assert state.step == marks[dead].step and state.tab == 6
    assert state.layer == marks[dead].layer
    assert bar.select.value == -1

    tab = AnalysisTab(state=state)
    tab.refresh()
    note = tab._bookmarks.object
    assert html.escape(marks[dead].detail) in note

    # The buttons walk from bookmark to bookmark, and say when there is none.
    state.go_to(0)
    bar.jump_relative(1)
    assert state.step == marks[0].step
    state.go_to(state.n_steps - 1)
    bar.jump_relative(1)
    assert state.step == state.n_steps - 1
    assert "No bookmark after" in state.message


def test_without_bookmarks_the_note_says_so() -> None:
    state = AppState()
    assert "No bookmarks" in bookmark_note(state)


@pytest.mark.ui
def test_choosing_a_bookmark_in_the_browser_moves_the_cursor_and_explains(
    page: Any, hot_dir: Path, open_app: Any
) -> None:
    with Session(hot_dir / "hot.session") as session:
        dead = next(m for m in find_bookmarks(session) if m.kind == "dead_unit")
    server = serve(hot_dir)
    try:
        open_app(page, f"{server.url}?session=hot.session")
        choice = page.locator("select").filter(has_text="Jump to a bookmark").first
        choice.wait_for(timeout=20_000)
        choice.select_option(label=f"step {dead.step} · {dead.title}")
        page.wait_for_url(re.compile(rf"[?&]step={dead.step}(&|$)"), timeout=20_000)
        page.wait_for_url(re.compile(r"[?&]tab=7(&|$)"), timeout=20_000)
        note = page.locator(".glassnet-bookmark").first
        note.wait_for(timeout=20_000)
        assert dead.title in note.inner_text()
        assert "nothing can revive it" in note.inner_text()
    finally:
        server.stop()
