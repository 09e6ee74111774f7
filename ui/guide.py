"""Guided replays in the app: play an instructor's stops; add stops as instructor.

Shown below the cursor.  A student presses Start and walks the stops with the
buttons; each stop moves the cursor and shows its note (as text).  A stop with
a question first puts the cursor on the step before, so the value is not on
screen yet; the answer is checked against the recorded value, and Reveal then
moves to the stop.  Someone who may change the file (its folder is writable
for them) also gets a form to add a stop at the cursor, or remove one.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import panel as pn
import param

from sessions import SessionError
from sessions.guide import (
    Question,
    Stop,
    array_fields,
    check_answer,
    read_guide,
)
from sessions.library import SessionFolder
from ui.state import AppState, describe_operation

__all__ = ["GuidePanel"]

_RESULTS = ("z", "a", "value", "after", "per_sample", "y_hat")
"""Array fields that are an operation's result, in the order to prefer them."""

logger = logging.getLogger(__name__)


class GuidePanel(pn.viewable.Viewer):
    """The guided replay of the open session, and its editor for instructors."""

    state = param.ClassSelector(class_=AppState, doc="The cursor the guide moves.")

    def __init__(
        self,
        folder_of: Callable[[Path], SessionFolder | None] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.folder_of = folder_of
        self.stops: list[Stop] = []
        self.current = -1
        self.revealed = True
        self.start_button = pn.widgets.Button(label="Start the guide", width=200)
        self.previous_button = pn.widgets.Button(label="◀ stop", width=80)
        self.next_button = pn.widgets.Button(label="stop ▶", width=80)
        self.where = pn.pane.HTML("", min_width=200)
        self.note = pn.pane.HTML("", sizing_mode="stretch_width")
        self.answer = pn.widgets.FloatInput(label="Your answer", value=None, width=160)
        self.check_button = pn.widgets.Button(label="Check", width=80)
        self.reveal_button = pn.widgets.Button(label="Reveal", width=80)
        self.feedback = pn.pane.HTML("", sizing_mode="stretch_width")
        self.question_row = pn.Row(
            self.answer, self.check_button, self.reveal_button, visible=False
        )
        # The editor (shown only to those who may change the file).
        self.new_note = pn.widgets.TextAreaInput(
            label="Note for a stop at the cursor",
            height=80,
            sizing_mode="stretch_width",
        )
        self.ask = pn.widgets.Checkbox(label="Ask the student for a value first")
        self.ask_field = pn.widgets.Select(label="Value of", options=[], width=120)
        self.ask_index = pn.widgets.TextInput(
            label="Entry (from 1, e.g. 1, 2)", value="1, 1", width=160
        )
        self.add_button = pn.widgets.Button(label="Add stop here", width=130)
        self.remove_choice = pn.widgets.Select(label="Stops", options={}, width=320)
        self.remove_button = pn.widgets.Button(label="Remove stop", width=120)
        self.editor = pn.Column(
            self.new_note,
            pn.Row(self.ask, self.ask_field, self.ask_index, self.add_button),
            pn.Row(self.remove_choice, self.remove_button),
            visible=False,
            sizing_mode="stretch_width",
        )
        self.start_button.on_click(lambda _: self.show(0))
        self.previous_button.on_click(lambda _: self.show(self.current - 1))
        self.next_button.on_click(lambda _: self.show(self.current + 1))
        self.check_button.on_click(lambda _: self.check())
        self.reveal_button.on_click(lambda _: self.reveal())
        self.add_button.on_click(lambda _: self.add_stop())
        self.remove_button.on_click(lambda _: self.remove_stop())
        self.state.param.watch(self._on_session, "session")
        self.state.param.watch(self._on_operation, ["events", "op"])
        self._layout = pn.Card(
            pn.Row(
                self.start_button, self.previous_button, self.where, self.next_button
            ),
            self.note,
            self.question_row,
            self.feedback,
            self.editor,
            title="Guide and notes",
            collapsed=True,
            sizing_mode="stretch_width",
        )
        self._layout.param.watch(self._on_operation, "collapsed")
        self._on_session()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- playing -----------------------------------------------------------

    def show(self, index: int) -> None:
        """Go to stop ``index``: its note, and the cursor (before it, if it asks)."""
        if not self.stops:
            return
        index = min(max(index, 0), len(self.stops) - 1)
        self.current = index
        stop = self.stops[index]
        self.feedback.object = ""
        self.answer.value = None
        self.revealed = stop.question is None
        if self.revealed:
            self.state.go_to(stop.step, stop.op)
        else:
            self._before(stop)
        self._show_stop()

    def check(self) -> bool | None:
        """Check the typed answer against the log; return whether it is right."""
        stop = self._stop()
        session = self.state.session
        if stop is None or stop.question is None or session is None:
            return None
        if self.answer.value is None:
            self.feedback.object = "<p>Type a number first.</p>"
            return None
        try:
            right, value = check_answer(session, stop, float(self.answer.value))
        except SessionError as err:
            self.state.message = str(err)
            return None
        verdict = "Right" if right else "Not quite"
        self.feedback.object = (
            f"<p class='glassnet-guide-feedback'><b>{verdict}.</b> The recorded value "
            f"is {value:.6g}; you said {float(self.answer.value):.6g}. Press Reveal "
            "to see where it comes from.</p>"
        )
        return right

    def reveal(self) -> None:
        """Move the cursor onto the stop whose value was asked for."""
        stop = self._stop()
        if stop is not None:
            self.revealed = True
            self.state.go_to(stop.step, stop.op)
            self._show_stop()

    # -- editing -----------------------------------------------------------

    def add_stop(self) -> bool:
        """Add a stop at the cursor with the note (and question) of the form."""
        folder = self._folder()
        session = self.state.session
        if folder is None or session is None:
            return False
        question = None
        if self.ask.value:
            try:
                parts = [p for p in self.ask_index.value.replace(",", " ").split() if p]
                index = tuple(int(p) - 1 for p in parts)
            except ValueError:
                self.state.message = (
                    f"The entry {self.ask_index.value!r} is not whole numbers; type "
                    "them from 1, separated by commas, e.g. 1, 2."
                )
                return False
            question = Question(str(self.ask_field.value), index)
        stop = Stop(self.state.step, self.state.op, self.new_note.value, question)
        stops = sorted([*self.stops, stop], key=lambda s: (s.step, s.op))
        return self._save(folder, stops)

    def remove_stop(self) -> bool:
        """Remove the stop chosen in the list."""
        folder = self._folder()
        index = self.remove_choice.value
        if folder is None or index is None:
            return False
        stops = [s for i, s in enumerate(self.stops) if i != index]
        return self._save(folder, stops)

    # -- internals ---------------------------------------------------------

    def _save(self, folder: SessionFolder, stops: list[Stop]) -> bool:
        session = self.state.session
        assert session is not None
        try:
            folder.set_guide(session.path.name, stops)
        except SessionError as err:
            self.state.message = str(err)
            return False
        self.stops = stops
        self.new_note.value = ""
        self._refresh_lists()
        return True

    def _folder(self) -> SessionFolder | None:
        session = self.state.session
        if session is None or self.folder_of is None:
            return None
        folder = self.folder_of(session.path)
        return folder if folder is not None and folder.writable else None

    def _stop(self) -> Stop | None:
        return self.stops[self.current] if 0 <= self.current < len(self.stops) else None

    def _before(self, stop: Stop) -> None:
        """Put the cursor just before ``stop``'s step, where its value is unknown."""
        if stop.step > 0:
            self.state.go_to(stop.step - 1, 10**9)  # the last operation
        else:
            self.state.go_to(0, max(stop.op - 1, 0))

    def _show_stop(self) -> None:
        stop = self._stop()
        n = len(self.stops)
        self.where.object = f"<p>Stop {self.current + 1} of {n}</p>" if stop else ""
        self.previous_button.disabled = self.current <= 0
        self.next_button.disabled = self.current >= n - 1
        if stop is None:
            self.note.object = ""
            self.question_row.visible = False
            return
        text = html.escape(stop.note).replace("\n", "<br>")
        parts = [f"<p class='glassnet-guide-note'>{text}</p>"]
        if stop.question is not None:
            q = stop.question
            entry = ", ".join(str(i + 1) for i in q.index)
            label = self._operation_label(stop)
            parts.append(
                f"<p class='glassnet-guide-question'>Predict {html.escape(q.field)}"
                f"[{entry}] of the {html.escape(label)} at step {stop.step}"
                + (", then check it." if not self.revealed else " (revealed).")
                + "</p>"
            )
        self.note.object = "".join(parts)
        self.question_row.visible = stop.question is not None
        self.answer.disabled = self.check_button.disabled = self.revealed

    def _operation_label(self, stop: Stop) -> str:
        session = self.state.session
        if session is None:
            return "operation"
        try:
            return describe_operation(session.step_events(stop.step)[stop.op])
        except (SessionError, IndexError):
            return "operation"

    def _on_session(self, *_: Any) -> None:
        self.stops, self.current = [], -1
        session = self.state.session
        if session is not None:
            try:
                self.stops = read_guide(session)
            except SessionError as err:
                self.state.message = str(err)
                logger.info("Unreadable guide in %s: %s", session.path, err)
        self._refresh_lists()
        self._show_stop()
        self.feedback.object = ""

    def _refresh_lists(self) -> None:
        n = len(self.stops)
        self.start_button.disabled = n == 0
        stops = "1 stop" if n == 1 else f"{n} stops"
        self.start_button.name = f"Start the guide ({stops})" if n else "No guide"
        self.remove_choice.options = {
            f"{i + 1}: step {s.step}, op {s.op} · {s.note[:40]}": i
            for i, s in enumerate(self.stops)
        }
        self.remove_choice.value = 0 if self.stops else None
        self.editor.visible = self._folder() is not None
        self._on_operation()

    def _on_operation(self, *_: Any) -> None:
        # Only for an open editor: a cursor move costs nothing otherwise.
        if not self.editor.visible or self._layout.collapsed:
            return
        event = self.state.event
        fields = list(array_fields(event)) if event is not None else []
        self.ask_field.options = fields
        # The operation's result first: z of a weighted sum, a of an activation...
        result = next((f for f in _RESULTS if f in fields), None)
        self.ask_field.value = result or (fields[0] if fields else None)
        self.ask.disabled = not fields
