"""Export from the app: download buttons and names for the plots' saved PNGs.

The files come from :mod:`sessions.export`, so a download equals what
``glassnet export`` writes; each file name carries the session and the step.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import panel as pn
import param
from bokeh.models import Plot, SaveTool

from engine import events as ev
from sessions import SessionError
from sessions.export import (
    array_fields,
    array_file_name,
    metrics_csv,
    metrics_file_name,
    notebook,
    notebook_file_name,
    npy_bytes,
    session_stem,
)
from ui.library import MAX_UPLOAD_BYTES
from ui.state import AppState, describe_operation
from ui.upload import size_message

__all__ = ["ArrayDownload", "PlotFileNames", "download_button", "session_downloads"]

logger = logging.getLogger(__name__)

MAIN_FIELD = {
    "batch_sampled": "X",
    "weighted_sum_computed": "z",
    "activation_computed": "a",
    "dropout_applied": "a",
    "loss_computed": "per_sample",
    "gradient_computed": "value",
    "parameters_updated": "after",
}
"""The array offered first for the cursor's operation, by event kind."""

_SLUG = re.compile(r"[^A-Za-z0-9]+")


def download_button(
    label: str, build: Callable[[], tuple[str, bytes]], state: AppState, **kwargs: Any
) -> pn.widgets.FileDownload:
    """Return a button that downloads the file ``build()`` makes when clicked.

    ``build`` returns ``(file name, bytes)``; it runs on the click, so the
    name and the contents follow the cursor of that moment.  A session error,
    or a file that cannot be read, goes to ``state.message`` (and nothing is
    downloaded; the server log keeps the error).
    """
    button = pn.widgets.FileDownload(
        label=label, filename="glassnet-export", auto=True, embed=False, **kwargs
    )

    def callback() -> io.BytesIO:
        try:
            name, data = build()
        except SessionError as err:
            state.message = str(err)
            logger.info("Export failed: %s", err)
            raise
        except OSError as err:
            state.message = f"Could not read what to export ({err.strerror or err})."
            logger.info("Export failed: %s", err)
            raise
        button.filename = name
        return io.BytesIO(data)

    button.callback = callback
    return button


def session_downloads(state: AppState) -> pn.Row:
    """Return the buttons for the session's metrics (CSV), a notebook and the file.

    The session file itself is offered once its run has ended (a file still
    being written may keep its newest steps beside it) and up to the size the
    app accepts as an upload.
    """

    def csv() -> tuple[str, bytes]:
        session = _session(state)
        return metrics_file_name(session), metrics_csv(session).encode("utf-8")

    def ipynb() -> tuple[str, bytes]:
        session = _session(state)
        book = notebook(session, state.step)
        text = json.dumps(book, indent=1) + "\n"
        return notebook_file_name(session, state.step), text.encode("utf-8")

    def session_file() -> tuple[str, bytes]:
        session = _session(state)
        name = session.path.name
        if session.status == "incomplete":
            msg = (
                f"{name} is still being recorded (or its recording stopped without "
                "an end); download it when the run has ended."
            )
            raise SessionError(msg)
        size = session.path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            advice = "Copy it from the sessions folder instead."
            raise SessionError(
                size_message(name, size, MAX_UPLOAD_BYTES, "downloads", advice)
            )
        return name, session.path.read_bytes()

    return pn.Row(
        download_button("Metrics of every step (CSV)", csv, state, width=240),
        download_button("Notebook at this step (.ipynb)", ipynb, state, width=240),
        # The notebook opens the session file: keep it beside the notebook.
        download_button("Session file", session_file, state, width=160),
    )


class ArrayDownload(pn.viewable.Viewer):
    """Pick one of the step's recorded arrays and download it as ``.npy``.

    The choice follows the cursor: when the cursor's operation is one of
    ``kinds``, its main array (``z``, ``a``, a gradient's value, a
    parameter after its update) is picked; otherwise the last choice stays
    while the step has it.  The owning tab calls :meth:`update` from its own
    ``_update``.
    """

    state = param.ClassSelector(class_=AppState, doc="The cursor shared by all tabs.")
    kinds = param.List(
        default=[], item_type=str, doc="The event kinds whose arrays are offered."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._choices: dict[str, tuple[ev.Event, str]] = {}
        self.select = pn.widgets.Select(
            label="Recorded array of this step", options=[], width=340
        )
        self.button = download_button(
            "Download as .npy", self._build, self.state, width=160, align="end"
        )
        self._layout = pn.Row(self.select, self.button)

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def update(self) -> None:
        """Offer the arrays of the cursor's step; pick the cursor's operation's."""
        choices: dict[str, tuple[ev.Event, str]] = {}
        # Preferred picks: the cursor's operation, else the selected layer's.
        at_cursor = at_layer = None
        now = self.state.event
        for event in self.state.events:
            if event.kind not in self.kinds:
                continue
            for field, value in array_fields(event).items():
                if value.ndim == 0:
                    continue
                label = f"{describe_operation(event)}: {field} {value.shape}"
                choices[label] = (event, field)
                if field != MAIN_FIELD.get(event.kind):
                    continue
                if event is now:
                    at_cursor = label
                if at_layer is None and event.layer == self.state.layer:
                    at_layer = label
        self._choices = choices
        old = self.select.value
        labels = list(choices)
        if self.select.options != labels:
            self.select.options = labels
        if at_cursor is not None:
            self.select.value = at_cursor
        elif old in choices:
            self.select.value = old
        elif labels:
            self.select.value = at_layer or labels[0]
        self.button.disabled = not labels

    def _build(self) -> tuple[str, bytes]:
        session = _session(self.state)
        picked = self._choices.get(self.select.value)
        if picked is None:
            msg = "This step has no recorded array to export here."
            raise SessionError(msg)
        # The event the label was made from, even if the cursor moved since.
        event, field = picked
        array: np.ndarray = array_fields(event)[field]
        return array_file_name(session, event, field), npy_bytes(array)


class PlotFileNames:
    """Name the PNG each plot's save tool writes after the session, step and plot.

    Bokeh asks for a file name in a prompt unless the save tool has one; here
    every save tool of the visible tab gets ``<session>_step<N>_<plot title>.png``
    whenever the cursor, the session or the tab changes (after the tabs have
    refreshed: this watcher is registered after theirs).
    """

    def __init__(self, state: AppState, tabs: pn.Tabs) -> None:
        self.state = state
        self.tabs = tabs
        self._pending = False
        state.param.watch(self.update, ["events", "tab"])
        self.update()

    def update(self, *_: Any) -> None:
        """Set the file names of the visible tab's save tools (on the next tick).

        Changing the tools while the browser's own change (a key press, the
        slider) is being applied kept that change's other updates (the step
        slider, the address) from reaching the page; on the next tick they
        go out first.
        """
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            if not self._pending:
                self._pending = True
                doc.add_next_tick_callback(self._rename)
        else:
            self._rename()

    def _rename(self) -> None:
        self._pending = False
        # NOTE: through Panel's unlocked(), not Bokeh's own dispatch. On a busy
        # connection Panel queues the message that brings newly made figures;
        # a file name change sent past that queue reached the page before the
        # figure it names ("reference ... isn't known" in the browser, which
        # then dropped the rest of that message).  unlocked() queues it behind.
        with pn.io.unlocked():
            self._rename_tools()

    def _rename_tools(self) -> None:
        session = self.state.session
        if session is None or not 0 <= self.state.tab < len(self.tabs.objects):
            return
        stem = f"{session_stem(session)}_step{self.state.step}"
        tab = self.tabs.objects[self.state.tab]
        # A plot without a title is named after its tab and its place in it.
        tab_name = _slug(self.tabs._names[self.state.tab]) or "plot"
        untitled = 0
        for pane in tab.select(pn.pane.Bokeh):
            model = pane.object
            if model is None or not hasattr(model, "select"):
                continue
            # NOTE: a figure's own toolbar, not Model.select: that walks every
            # model the figure references (data sources too), 50 ms a tab.
            plots = [model] if isinstance(model, Plot) else model.select({"type": Plot})
            for fig in plots:
                what = _slug(getattr(getattr(fig, "title", None), "text", "") or "")
                if not what:
                    untitled += 1
                    what = f"{tab_name}_plot{untitled}"
                name = f"{stem}_{what}.png"
                for tool in fig.toolbar.tools:
                    if isinstance(tool, SaveTool) and tool.filename != name:
                        tool.filename = name


def _slug(text: str) -> str:
    """Return ``text`` as a short lower-case file-name part (letters, digits, _)."""
    return _SLUG.sub("_", text).strip("_").lower()[:60].rstrip("_")


def _session(state: AppState) -> Any:
    if state.session is None:
        msg = "No session is open: open one in the library first."
        raise SessionError(msg)
    return state.session
