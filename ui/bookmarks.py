"""Automatic bookmarks in the app: a jump list beside the cursor, notes on tab 7.

The bookmarks of a session (``sessions.bookmarks``) are found once when it is
opened and kept in ``AppState.bookmarks``.  Choosing one moves the cursor to
its step (and layer) and shows the Analysis tab, which says what happened.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import panel as pn
import param

from sessions.bookmarks import Bookmark, find_bookmarks
from sessions.errors import SessionError
from ui.state import AppState

__all__ = ["BookmarkBar", "bookmark_note", "bookmarks_here"]

logger = logging.getLogger(__name__)

ANALYSIS_TAB = 6

_PROMPT = "Jump to a bookmark…"


class BookmarkBar(pn.viewable.Viewer):
    """A list of the session's bookmarks and buttons to the previous and next one."""

    state = param.ClassSelector(class_=AppState, doc="The cursor the bar moves.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.select = pn.widgets.Select(
            label="Bookmarks",
            options={_PROMPT: -1},
            value=-1,
            width=330,
            description="Moments of this run worth a stop, found automatically",
        )
        self.previous_button = pn.widgets.Button(
            label="◀ mark", description="Previous bookmark", width=75
        )
        self.next_button = pn.widgets.Button(
            label="mark ▶", description="Next bookmark", width=75
        )
        self.select.param.watch(self._on_select, "value")
        self.previous_button.on_click(lambda _: self.jump_relative(-1))
        self.next_button.on_click(lambda _: self.jump_relative(1))
        self.state.param.watch(self._on_session, "session")
        self._layout = pn.Row(
            self.previous_button, self.select, self.next_button, margin=0
        )
        self._on_session()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def jump(self, index: int) -> None:
        """Move the cursor to bookmark ``index`` and show the Analysis tab."""
        mark = self.state.bookmarks[index]
        state = self.state
        with param.parameterized.batch_call_watchers(state):
            if mark.layer is not None:
                state.layer = mark.layer
            state.tab = ANALYSIS_TAB
        state.go_to(mark.step)

    def jump_relative(self, direction: int) -> None:
        """Jump to the next (``1``) or previous (``-1``) bookmark from the cursor."""
        marks = self.state.bookmarks
        step = self.state.step
        if direction > 0:
            later = [i for i, m in enumerate(marks) if m.step > step]
            target = later[0] if later else None
        else:
            earlier = [i for i, m in enumerate(marks) if m.step < step]
            target = earlier[-1] if earlier else None
        if target is None:
            where = "after" if direction > 0 else "before"
            self.state.message = f"No bookmark {where} step {step}."
            return
        self.jump(target)

    def _on_session(self, *_: Any) -> None:
        state = self.state
        marks: list[Bookmark] = []
        if state.session is not None:
            try:
                marks = find_bookmarks(state.session)
            except SessionError as err:
                state.message = f"Bookmarks could not be found: {err}"
                logger.info("Bookmarks failed for %s: %s", state.session.path, err)
        state.bookmarks = marks
        options = {_PROMPT: -1}
        for i, m in enumerate(marks):
            options[f"step {m.step} · {m.title}"] = i
        self.select.options = options
        self.select.value = -1
        self.select.disabled = not marks
        self.previous_button.disabled = self.next_button.disabled = not marks

    def _on_select(self, event: param.parameterized.Event) -> None:
        if event.new is None or event.new < 0:
            return
        self.jump(event.new)
        self.select.value = -1  # ready to jump to the same one again


def bookmarks_here(state: AppState) -> list[Bookmark]:
    """Return the bookmarks at the cursor's step."""
    return [m for m in state.bookmarks if m.step == state.step]


def bookmark_note(state: AppState) -> str:
    """Return HTML for tab 7: what happened at the cursor's bookmarks, or a list."""
    marks = state.bookmarks
    if not marks:
        return (
            "<p><i>No bookmarks: nothing unusual was found in this run (no "
            "divergence, spikes, dead or saturated units, vanishing or exploding "
            "gradients, plateau or test result to point out).</i></p>"
        )
    here = bookmarks_here(state)
    parts = []
    for m in here:
        parts.append(
            f"<div class='glassnet-bookmark'><b>{html.escape(m.title)}</b> "
            f"(step {m.step}): {html.escape(m.detail)}</div>"
        )
    if not here:
        listed = ", ".join(
            f"{html.escape(m.title.lower())} at step {m.step}" for m in marks[:8]
        )
        more = f" and {len(marks) - 8} more" if len(marks) > 8 else ""
        parts.append(
            f"<p>This run has {len(marks)} bookmark{'s' if len(marks) != 1 else ''}: "
            f"{listed}{more}. Pick one in the Bookmarks list beside the cursor "
            "to jump there; this section then says what happened.</p>"
        )
    return "".join(parts)
