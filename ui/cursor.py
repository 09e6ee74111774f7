"""The cursor controls shown above the tabs: step, operation, play, keyboard, URL.

One :class:`CursorControls` per user moves the shared :class:`AppState`; the
tabs follow it.  :class:`Moment` mirrors the cursor in the page's URL so a
link opens exactly one moment of one session.
"""

from __future__ import annotations

import html
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import panel as pn
import param

from sessions import SessionError
from sessions.library import check_name
from ui.bookmarks import BookmarkBar
from ui.state import AppState

__all__ = [
    "SPEEDS",
    "CursorControls",
    "KeyboardShortcuts",
    "Moment",
    "resolve_session_name",
]

logger = logging.getLogger(__name__)

SPEEDS = {
    "1 step/s": 1000,
    "2 steps/s": 500,
    "5 steps/s": 200,
    "10 steps/s": 100,
    "20 steps/s": 50,
}
"""Play speeds offered, mapped to the player's interval in milliseconds."""

KEY_ACTIONS = ("previous_step", "next_step", "previous_op", "next_op")

ECHO_SECONDS = 3.0
"""How long the browser's report of an address the app wrote counts as an echo."""
"""What the keyboard shortcuts can ask for."""

N_TABS = 7


def resolve_session_name(sessions_dir: str | Path, name: str) -> Path:
    """Return the file ``name`` names inside ``sessions_dir``, or raise.

    Raises
    ------
    SessionError
        If ``name`` is not a plain session file name, is a link, or is not in
        the folder.
    """
    check_name(name)
    folder = Path(sessions_dir)
    path = folder / name
    if path.is_symlink() or not path.is_file():
        msg = f"There is no session {name!r} in the library; pick one there."
        raise SessionError(msg)
    if path.resolve().parent != folder.resolve():
        raise SessionError(f"{name!r} is not inside {folder}.")
    return path


class StepSlider(pn.widgets.IntSlider):
    """An integer slider whose moves reach the server without Panel's delay.

    Panel waits 50 ms (``_debounce``) before handling a change from the
    browser, to gather several into one; for the cursor that wait was half of
    a move's round trip.  Changes that arrive while the server is busy are
    still handled together.
    """

    _debounce = 0


class KeyboardShortcuts(pn.custom.JSComponent):
    """Listen to the keyboard on the whole page and report cursor moves.

    Left/right arrows move one step; shift+arrows and ``,``/``.`` move one
    operation.  Keys typed into inputs, selects, text areas and sliders are
    left to them.  It also gives the player's icon-only play and pause
    buttons accessible names (``aria-label`` and a tooltip).  Each press
    calls ``on_action`` with one of :data:`KEY_ACTIONS`.
    """

    _debounce = 0

    def __init__(self, on_action: Callable[[str], None] | None = None, **params: Any):
        super().__init__(**params)
        # A plain attribute: a param would be sent to the browser.
        self.on_action = on_action

    _esm = """
    const SKIP = ["input", "textarea", "select", "[contenteditable]", "[role=slider]",
      ".noUi-handle"].join(", ")
    export function render({ model }) {
      const onKey = (e) => {
        if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return
        const target = e.composedPath ? e.composedPath()[0] : e.target
        if (target && target.closest && target.closest(SKIP)) return
        let action = null
        if (e.key === "ArrowLeft") action = e.shiftKey ? "previous_op" : "previous_step"
        else if (e.key === "ArrowRight") action = e.shiftKey ? "next_op" : "next_step"
        else if (e.key === ",") action = "previous_op"
        else if (e.key === ".") action = "next_op"
        if (action === null) return
        e.preventDefault()
        model.send_msg(action)
      }
      document.addEventListener("keydown", onKey)
      model.on("remove", () => document.removeEventListener("keydown", onKey))
      // The player's play/pause buttons are bare icons: give them names.
      const NAMES = {play: "Play (step through the run)", pause: "Pause"}
      const findButtons = (root, found) => {
        for (const el of root.querySelectorAll("*")) {
          if (el.shadowRoot) findButtons(el.shadowRoot, found)
          if (el.tagName === "BUTTON") {
            for (const [cls, label] of Object.entries(NAMES))
              if (el.classList.contains(cls)) found.push([el, label])
          }
        }
        return found
      }
      let tries = 0
      const nameButtons = () => {
        const found = findButtons(document, [])
        for (const [el, label] of found) {
          el.setAttribute("aria-label", label)
          el.setAttribute("title", label)
        }
        if (found.length < 2 && ++tries < 40) setTimeout(nameButtons, 250)
      }
      setTimeout(nameButtons, 0)
      return document.createElement("span")
    }
    """

    def _handle_msg(self, data: Any) -> None:
        if data in KEY_ACTIONS and self.on_action is not None:
            self.on_action(data)


class Moment(param.Parameterized):
    """The cursor as the page URL carries it (``?session=&step=&op=&tab=``).

    Values are kept as typed in the URL; :meth:`CursorControls.apply_moment`
    checks them.  ``tab`` counts from 1 (1 Network ... 7 Analysis); ``step``
    and ``op`` count from 0, as everywhere in glassnet.
    """

    session = param.Parameter(default=None, doc="Session file name in the folder.")
    step = param.Parameter(default=None, doc="Step, from 0.")
    op = param.Parameter(default=None, doc="Operation within the step, from 0.")
    tab = param.Parameter(default=None, doc="Tab number, from 1.")


class CursorControls(pn.viewable.Viewer):
    """Step slider, play/pause with speed, step and operation buttons, a step box.

    Everything is built once; moving the cursor only updates widget values
    (the slider stays one Bokeh model however long the run).
    """

    state = param.ClassSelector(class_=AppState, doc="The cursor these controls move.")
    moment = param.ClassSelector(
        class_=Moment, doc="The cursor as the URL carries it (kept in step)."
    )

    def __init__(self, **params: Any) -> None:
        if params.get("state") is None:
            params["state"] = AppState()
        if params.get("moment") is None:
            params["moment"] = Moment()
        super().__init__(**params)
        state = self.state
        self._syncing = False
        self._pushed: deque[tuple[tuple[Any, ...], float]] = deque(maxlen=64)

        self.slider = StepSlider.from_param(
            state.param.step, label="Step", sizing_mode="stretch_width", min_width=200
        )
        self.player = pn.widgets.Player.from_param(
            state.param.step,
            label="Play",
            interval=SPEEDS["5 steps/s"],
            visible_buttons=["pause", "play"],
            show_loop_controls=False,
            show_value=False,
            loop_policy="once",
            width=110,
            height=50,
            scale_buttons=0.8,
            # The step slider beside it already shows where the run is.
            stylesheets=["input[type=range] { display: none; }"],
        )
        self.speed = pn.widgets.Select(
            label="Speed", options=list(SPEEDS), value="5 steps/s", width=110
        )
        # Its own widget, not linked to state.step: a cleared box or a step
        # outside the run gets a message and the box shows the cursor's step again.
        self.step_box = pn.widgets.IntInput(
            label="Go to step",
            value=state.step,
            width=110,
            description="Type a step and press Enter",
        )
        self.previous_step_button = pn.widgets.Button(
            label="◀ step", description="Previous step (left arrow)", width=80
        )
        self.next_step_button = pn.widgets.Button(
            label="step ▶", description="Next step (right arrow)", width=80
        )
        self.previous_op_button = pn.widgets.Button(
            label="◀ op", description="Previous operation (shift+left or ,)", width=70
        )
        self.next_op_button = pn.widgets.Button(
            label="op ▶", description="Next operation (shift+right or .)", width=70
        )
        self.op_label = pn.pane.HTML("", min_width=260, css_classes=["glassnet-op"])
        self.op_select = pn.widgets.Select(
            label="Operations of this step", options={}, width=300
        )
        self.keyboard = KeyboardShortcuts(
            on_action=self.do, width=0, height=0, margin=0
        )
        self.bookmarks = BookmarkBar(state=state)

        self.speed.param.watch(self._on_speed_value, "value")
        self.player.param.watch(self._update_moment, "direction")
        self.previous_step_button.on_click(lambda _: self.do("previous_step"))
        self.next_step_button.on_click(lambda _: self.do("next_step"))
        self.previous_op_button.on_click(lambda _: self.do("previous_op"))
        self.next_op_button.on_click(lambda _: self.do("next_op"))
        self.op_select.param.watch(self._on_op_select_value, "value")
        self.step_box.param.watch(self._on_step_box_value, "value")
        state.param.watch(self._update_step_box, "step")
        state.param.watch(self._update_operations, ["events", "op"])
        state.param.watch(self._update_moment, ["session", "step", "op", "tab"])
        self.moment.param.watch(self._on_moment, ["session", "step", "op", "tab"])
        self._update_operations()
        self._update_moment()

        self._layout = pn.Column(
            pn.Row(
                self.player,
                self.speed,
                self.previous_step_button,
                self.slider,
                self.next_step_button,
                self.step_box,
                sizing_mode="stretch_width",
            ),
            pn.Row(
                self.previous_op_button,
                self.op_label,
                self.next_op_button,
                self.op_select,
                self.bookmarks,
                self.keyboard,
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- actions -----------------------------------------------------------

    def do(self, action: str) -> None:
        """Carry out one of :data:`KEY_ACTIONS` (from a button or a key press)."""
        state = self.state
        if action == "next_step":
            if state.step + 1 < state.n_steps:
                state.step += 1
        elif action == "previous_step":
            if state.step > 0:
                state.step -= 1
        elif action == "next_op":
            state.next_op()
        elif action == "previous_op":
            state.previous_op()
        else:
            raise ValueError(f"Unknown cursor action {action!r}; use {KEY_ACTIONS}.")

    def apply_moment(
        self,
        session: Any = None,
        step: Any = None,
        op: Any = None,
        tab: Any = None,
    ) -> list[str]:
        """Move the cursor to the moment a URL names; return the problems found.

        Each value may be None (left as it is).  A bad value is skipped and
        described in ``state.message``; the rest is still applied.
        """
        state = self.state
        problems: list[str] = []
        if session not in (None, ""):
            try:
                path = resolve_session_name(state.sessions_dir, str(session))
            except SessionError as err:
                problems.append(str(err))
            else:
                current = state.session.path if state.session is not None else None
                if current is None or current.resolve() != path.resolve():
                    if not state.open(path):
                        problems.append(state.message)
        step_value = _whole(step, "step", problems)
        op_value = _whole(op, "op", problems)
        tab_value = _whole(tab, "tab", problems)
        if step_value is not None and not 0 <= step_value < max(state.n_steps, 1):
            problems.append(
                f"Step {step_value} is outside this run (0 to {state.n_steps - 1}); "
                "showing the nearest step."
            )
        if step_value is not None or op_value is not None:
            state.go_to(
                state.step if step_value is None else step_value,
                0 if op_value is None else op_value,
            )
        if op_value is not None and not 0 <= op_value < max(len(state.events), 1):
            problems.append(
                f"Operation {op_value} is not in step {state.step} (0 to "
                f"{len(state.events) - 1}); showing the nearest one."
            )
        if tab_value is not None:
            if 1 <= tab_value <= N_TABS:
                state.tab = tab_value - 1
            else:
                problems.append(f"tab={tab_value} is not a tab: use 1 to {N_TABS}.")
        if problems:
            state.message = " ".join(problems)
        return problems

    # -- handlers ----------------------------------------------------------

    def _on_speed_value(self, event: param.parameterized.Event) -> None:
        self.player.interval = SPEEDS[event.new]

    def _on_step_box_value(self, event: param.parameterized.Event) -> None:
        state = self.state
        value = event.new
        if value == state.step:
            return
        last = state.n_steps - 1
        if value is None:
            state.message = f"Type a step from 0 to {last} in 'Go to step'."
        elif not 0 <= value <= last:
            state.message = f"Step {value} is outside this run (0 to {last})."
        else:
            state.step = value
            return
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            # NOTE: set during the browser's own change, the value would not
            # be sent back; on the next tick it is.
            doc.add_next_tick_callback(self._update_step_box)
        else:
            self._update_step_box()

    def _on_op_select_value(self, event: param.parameterized.Event) -> None:
        if event.new is not None and event.new != self.state.op:
            self.state.op = event.new

    def _on_moment(self, *_: Any) -> None:
        if self._syncing:
            return
        m = self.moment
        if self._is_echo((m.session, m.step, m.op, m.tab)):
            return
        self._syncing = True
        try:
            self.apply_moment(m.session, m.step, m.op, m.tab)
        finally:
            self._syncing = False
        self._update_moment()

    # -- refreshers ----------------------------------------------------------

    def _update_step_box(self, *_: Any) -> None:
        self.step_box.value = self.state.step

    def _update_operations(self, *_: Any) -> None:
        state = self.state
        labels = state.operations()
        options = {f"{i}. {label}": i for i, label in enumerate(labels)}
        with pn.io.hold():
            if list(self.op_select.options) != list(options):
                self.op_select.options = options
            op = min(state.op, len(labels) - 1)
            self.op_select.value = op if labels else None
            if labels:
                # Numbered from 0, as in the operation list and the link's op.
                text = (
                    f"<b>Operation {op}</b> (0 to {len(labels) - 1}, step "
                    f"{state.step}): {html.escape(labels[op])}"
                )
            else:
                text = "<b>No operation</b>: open a session in the library."
            self.op_label.object = f"<span class='glassnet-op-text'>{text}</span>"

    def _update_moment(self, *_: Any) -> None:
        # NOTE: each URL change adds a browser history entry, so none while playing.
        if self._syncing or self.player.direction != 0:
            return
        state = self.state
        name = None
        if state.session is not None:
            path = state.session.path
            try:
                if path.parent.resolve() == Path(state.sessions_dir).resolve():
                    name = path.name
            except OSError:
                name = None
        self._syncing = True
        try:
            self.moment.param.update(
                session=name, step=state.step, op=state.op, tab=state.tab + 1
            )
        finally:
            self._syncing = False
        self._pushed.append(
            ((name, state.step, state.op, state.tab + 1), time.monotonic())
        )

    def _is_echo(self, moment: tuple[Any, ...]) -> bool:
        """Return True for the browser sending back a moment pushed moments ago.

        The address is written on every cursor move and the browser reports
        it back; on a slow connection the report of step 1 can arrive after
        the slider moved on to step 3, and applying it would move the cursor
        back.  A moment pushed within :data:`ECHO_SECONDS` that is no longer
        the cursor's is such a stale echo.
        """
        now = time.monotonic()
        key = _plain(moment)
        current = _plain(self._pushed[-1][0]) if self._pushed else None
        return any(
            _plain(pushed) == key and key != current and now - when < ECHO_SECONDS
            for pushed, when in self._pushed
        )


def _plain(moment: tuple[Any, ...]) -> tuple[str | None, ...]:
    """Return a moment with every value as the URL's text (None stays None)."""
    return tuple(None if v is None else str(v) for v in moment)


def _whole(value: Any, name: str, problems: list[str]) -> int | None:
    """Return ``value`` as a whole number, or None (noting why) when it is not."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        problems.append(f"{name}={value!r} is not a whole number.")
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        problems.append(f"{name}={str(value)!r} in the link is not a whole number.")
        return None
