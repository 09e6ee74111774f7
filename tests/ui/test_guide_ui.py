"""Guided replays in the app: playing stops, questions checked, the editor."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import serve
from test_tab_training import _tiny

from engine import events as ev
from sessions import Session
from sessions.guide import Question, Stop, write_guide
from sessions.library import SessionFolder
from ui.guide import GuidePanel
from ui.state import AppState


def _z(path: Path, step: int) -> tuple[int, float]:
    """Return the operation of layer 1's weighted sum at ``step`` and z[1, 0]."""
    with Session(path) as s:
        for i, e in enumerate(s.step_events(step)):
            if isinstance(e, ev.WeightedSumComputed) and e.layer == 0:
                return i, float(e.z[1, 0])
    raise AssertionError("no weighted sum")


@pytest.fixture
def guided(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    folder.mkdir()
    path = _tiny(folder / "guided.session")
    op, _ = _z(path, 3)
    write_guide(
        path,
        [
            Stop(1, 0, "Here the <b>batch</b> is drawn."),
            Stop(3, op, "Predict it!", Question("z", (1, 0))),
        ],
    )
    return path


def test_a_student_plays_the_stops_and_answers(guided: Path) -> None:
    state = AppState(sessions_dir=str(guided.parent))
    read_only = SessionFolder(guided.parent, writable=False, label="the library")
    panel = GuidePanel(state=state, folder_of=lambda p: read_only)
    assert state.open(guided)
    assert not panel.editor.visible  # not theirs to change
    assert "2 stops" in panel.start_button.name
    panel.show(0)
    assert (state.step, state.op) == (1, 0)
    assert "&lt;b&gt;batch&lt;/b&gt;" in panel.note.object  # text, not markup
    panel.show(1)
    # The value is not on screen yet: the cursor waits on the step before.
    assert state.step == 2 and panel.question_row.visible
    op, z = _z(guided, 3)
    panel.answer.value = z + 1.0
    assert panel.check() is False
    assert "Not quite" in panel.feedback.object
    panel.answer.value = float(f"{z:.4g}")
    assert panel.check() is True
    panel.reveal()
    assert (state.step, state.op) == (3, op)
    assert panel.answer.disabled


def test_an_instructor_adds_and_removes_stops(guided: Path) -> None:
    state = AppState(sessions_dir=str(guided.parent))
    mine = SessionFolder(guided.parent, writable=True, label="your workspace")
    panel = GuidePanel(state=state, folder_of=lambda p: mine)
    assert state.open(guided)
    assert panel.editor.visible
    assert panel.ask_field.options == []  # a closed card does no work per move
    panel._layout.collapsed = False
    state.go_to(5)
    state.op = next(
        i for i, e in enumerate(state.events) if isinstance(e, ev.WeightedSumComputed)
    )
    assert panel.ask_field.value == "z"  # the operation's result, not its inputs
    state.op = 2
    panel.new_note.value = "Look at this."
    assert panel.add_stop()
    with Session(guided) as s:
        from sessions.guide import read_guide

        stops = read_guide(s)
    assert [(x.step, x.op) for x in stops] == [(1, 0), (3, stops[1].op), (5, state.op)]
    panel.remove_choice.value = 0
    assert panel.remove_stop()
    assert [x.step for x in panel.stops] == [3, 5]
    # A question about an entry the array does not have gets the reason.
    panel.ask.value = True
    panel.ask_field.value = panel.ask_field.options[0]
    panel.ask_index.value = "99, 99"
    assert not panel.add_stop()
    assert "entry" in state.message


def test_without_a_guide_the_panel_says_so(tmp_path: Path) -> None:
    path = _tiny(tmp_path / "plain.session")
    state = AppState()
    panel = GuidePanel(state=state)
    assert state.open(path)
    assert panel.start_button.disabled and panel.start_button.name == "No guide"
    assert not panel.editor.visible


@pytest.mark.ui
def test_a_guided_replay_in_the_browser(page: Any, guided: Path, open_app: Any) -> None:
    shutil.copy(guided, guided.parent / "copy.session")
    op, z = _z(guided, 3)
    server = serve(guided.parent)
    try:
        open_app(page, f"{server.url}?session=guided.session")
        page.get_by_text("Guide and notes").first.click()
        page.get_by_role("button", name=re.compile("Start the guide")).click()
        page.wait_for_url(re.compile(r"[?&]step=1(&|$)"), timeout=20_000)
        page.get_by_text("Stop 1 of 2").wait_for(timeout=20_000)
        page.get_by_role("button", name="stop ▶").click()
        page.get_by_text("Stop 2 of 2").wait_for(timeout=20_000)
        page.wait_for_url(re.compile(r"[?&]step=2(&|$)"), timeout=20_000)
        box = page.get_by_label("Your answer")
        box.fill(f"{z:.4g}")
        box.press("Enter")
        page.get_by_role("button", name="Check").click()
        page.locator(".glassnet-guide-feedback", has_text="Right").wait_for(
            timeout=20_000
        )
        page.get_by_role("button", name="Reveal").click()
        page.wait_for_url(re.compile(r"[?&]step=3(&|$)"), timeout=20_000)
    finally:
        server.stop()
