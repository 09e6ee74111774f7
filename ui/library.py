"""The session library in the sidebar: list, open, upload, and name session files."""

from __future__ import annotations

import html
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import panel as pn
import param

from sessions import Session, SessionError
from sessions.library import (
    MAX_DESCRIPTION_CHARS,
    MAX_TITLE_CHARS,
    SessionInfo,
    check_name,
    list_sessions,
    set_title,
)
from ui.state import AppState
from ui.upload import LimitedFileInput, size_message

__all__ = ["MAX_UPLOAD_BYTES", "SessionLibrary", "keep_upload"]

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 12 * 1024 * 1024
"""The largest session file the app accepts as an upload (12 MiB).

The browser sends an upload as one websocket message, base64-encoded; the
input checks the size in the browser first (see :mod:`ui.upload`).
"""

# A long unbroken title or name wraps instead of overflowing the sidebar.
_ENTRY_CSS = ".glassnet-entry { overflow-wrap: anywhere; }"

_TOO_LARGE_ADVICE = "Copy larger files into the sessions folder instead."


def keep_upload(
    folder: str | Path, filename: str | None, content: bytes | None
) -> Path:
    """Check an uploaded session file and keep it in ``folder``; return its path.

    The name must be plain (see :func:`sessions.library.check_name`) and new in
    the folder, the content at most :data:`MAX_UPLOAD_BYTES`, and the file must
    open as a glassnet session with its dataset, its first and last steps
    rebuilt exactly.  Nothing is kept otherwise.

    Raises
    ------
    SessionError
        With a message for the user, when any check fails.
    """
    if not filename or content is None:
        raise SessionError("No file was uploaded: choose a .session file first.")
    name = os.path.basename(str(filename).replace("\\", "/"))
    if name != filename:
        msg = f"{filename!r} names a folder; upload a file with a plain name."
        raise SessionError(msg)
    check_name(name)
    if len(content) > MAX_UPLOAD_BYTES:
        msg = size_message(
            name, len(content), MAX_UPLOAD_BYTES, "session files", _TOO_LARGE_ADVICE
        )
        raise SessionError(msg)
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if target.exists() or target.is_symlink():
        msg = f"{name} is already in the library; rename the file and upload it again."
        raise SessionError(msg)
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=root)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        try:
            with Session(tmp) as session:
                session.dataset  # noqa: B018 - reading it checks its hash
                # Rebuilding the first and last steps catches a changed config.
                if session.n_steps:
                    session.step_events(0)
                    session.step_events(session.n_steps - 1)
        except SessionError as err:
            text = str(err).replace(str(tmp), name)
            raise SessionError(f"{name} was not kept: {text}") from err
        # NOTE: link() fails if the name appeared meanwhile, unlike rename().
        os.link(tmp, target)
    except FileExistsError:
        msg = f"{name} is already in the library; rename the file and upload it again."
        raise SessionError(msg) from None
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
    logger.info("Kept uploaded session %s", target)
    return target


class SessionLibrary(pn.viewable.Viewer):
    """List the folder's sessions; open, upload, and set a title and description.

    Titles and descriptions are user text: always shown escaped.
    """

    state = param.ClassSelector(
        class_=AppState, doc="The cursor the library opens into."
    )
    revision = param.Integer(
        default=0, doc="Grows each time a title or description is saved."
    )

    def __init__(self, **params: Any) -> None:
        if params.get("state") is None:
            params["state"] = AppState()
        super().__init__(**params)
        self.infos: list[SessionInfo] = []
        # The open session's path while its run is still being recorded.
        self._live: str | None = None
        self.refresh_button = pn.widgets.Button(label="Refresh list", width=110)
        self.items = pn.Column(sizing_mode="stretch_width")
        self.upload = LimitedFileInput(
            accept=".session",
            max_bytes=MAX_UPLOAD_BYTES,
            label="Upload a session file",
            what="session files",
            advice=_TOO_LARGE_ADVICE,
            on_refused=self._on_upload_refused,
            sizing_mode="stretch_width",
        )
        self.title_input = pn.widgets.TextInput(
            label="Title of the open session",
            max_length=MAX_TITLE_CHARS,
            sizing_mode="stretch_width",
        )
        self.description_input = pn.widgets.TextAreaInput(
            label="Description",
            max_length=MAX_DESCRIPTION_CHARS,
            height=90,
            sizing_mode="stretch_width",
        )
        self.save_button = pn.widgets.Button(label="Save title", width=110)
        self.refresh_button.on_click(self._on_refresh_button_click)
        self.save_button.on_click(self._on_save_button_click)
        self.upload.param.watch(self._on_upload_value, ["filename", "value"])
        self.state.param.watch(self._update_editor, "session")
        self.state.param.watch(self._on_state_session, "session")
        self._layout = pn.Column(
            pn.pane.HTML("<b>Sessions</b>"),
            self.refresh_button,
            self.items,
            pn.pane.HTML(
                f"<b>Upload</b> a .session file (at most "
                f"{MAX_UPLOAD_BYTES // 2**20} MiB)"
            ),
            self.upload,
            pn.pane.HTML("<b>Describe</b> the open session"),
            self.title_input,
            self.description_input,
            self.save_button,
            sizing_mode="stretch_width",
        )
        self.refresh()
        self._update_editor()
        self._on_state_session()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- actions -----------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the folder and rebuild the list."""
        self.infos = list_sessions(self.state.sessions_dir)
        rows = [self._row(info) for info in self.infos]
        if not rows:
            rows = [pn.pane.HTML("<i>No session files in this folder yet.</i>")]
        self.items[:] = rows

    def update_live(self) -> None:
        """Refresh the list once the run of the open session, recorded live, has ended.

        Cheap while nothing changed; :class:`ui.app.App` calls it each time it
        re-reads a session still being written.
        """
        if self._live is None:
            return
        session = self.state.session
        if session is None or str(session.path) != self._live:
            self._live = None
        elif session.status != "incomplete":
            self._live = None
            self.refresh()  # its entry now shows all its steps and how it ended

    def open(self, name: str) -> bool:
        """Open the listed session called ``name``; False (with a message) if not."""
        info = next((i for i in self.infos if i.name == name), None)
        if info is None:
            self.state.message = f"{name!r} is not in the library; refresh the list."
            return False
        if info.damaged:
            self.state.message = f"{name} cannot be opened: {info.damaged}"
            return False
        return self.state.open(info.path)

    def save_title(self, title: str, description: str | None) -> bool:
        """Write a title (and description) into the open session file."""
        session = self.state.session
        if session is None:
            self.state.message = "Open a session before giving it a title."
            return False
        folder = Path(self.state.sessions_dir).resolve()
        if session.path.resolve().parent != folder:
            self.state.message = (
                f"{session.path.name} is not in the library folder; only files "
                "there can be renamed."
            )
            return False
        try:
            info = set_title(session.path, title, description)
        except SessionError as err:
            self.state.message = str(err)
            return False
        session.meta["title"] = info.title
        session.meta["description"] = info.description
        self.revision += 1
        self.refresh()
        return True

    # -- handlers ----------------------------------------------------------

    def _on_refresh_button_click(self, _: Any) -> None:
        self.refresh()

    def _on_state_session(self, *_: Any) -> None:
        session = self.state.session
        if session is None:
            self._live = None
            return
        self._live = str(session.path) if session.status == "incomplete" else None
        # A run started on tab 5 writes a new file into the folder: list it.
        try:
            in_folder = (
                session.path.resolve().parent == Path(self.state.sessions_dir).resolve()
            )
        except OSError:
            in_folder = False
        if in_folder and session.path.name not in {i.name for i in self.infos}:
            self.refresh()

    def _on_save_button_click(self, _: Any) -> None:
        self.save_title(self.title_input.value, self.description_input.value)

    def _on_upload_refused(self, text: str) -> None:
        self.state.message = text

    def _on_upload_value(self, *_: Any) -> None:
        if self.upload.value is None:
            return
        try:
            path = keep_upload(
                self.state.sessions_dir, self.upload.filename, self.upload.value
            )
        except SessionError as err:
            self.state.message = str(err)
            return
        finally:
            # Empty the widget, so choosing the same file again uploads it again.
            self.upload.param.update(value=None, filename=None)
            self.upload.clear()
        self.refresh()
        self.state.open(path)

    # -- refreshers ----------------------------------------------------------

    def _update_editor(self, *_: Any) -> None:
        session = self.state.session
        self.title_input.value = "" if session is None else session.title
        self.description_input.value = (
            "" if session is None else str(session.meta.get("description", ""))
        )

    def _row(self, info: SessionInfo) -> pn.viewable.Viewable:
        """Return one entry of the list: what the file holds and an Open button."""
        name = html.escape(info.name)
        if info.damaged:
            text = (
                f"<div class='glassnet-entry damaged'><b>{name}</b>: damaged<br>"
                f"<small>{html.escape(info.damaged)}</small></div>"
            )
        else:
            date = html.escape(info.created_at[:16].replace("T", " "))
            text = (
                f"<div class='glassnet-entry'><b>{html.escape(info.title)}</b><br>"
                f"<small>{name} · {html.escape(info.dataset)} · "
                f"{html.escape(info.network)} · {info.steps}/{info.total_steps} "
                f"steps · {html.escape(info.status)} · {date}</small></div>"
            )
        button = pn.widgets.Button(
            label="Open", width=60, disabled=bool(info.damaged), margin=(5, 5)
        )
        button.on_click(lambda _, n=info.name: self.open(n))
        return pn.Row(
            pn.pane.HTML(text, sizing_mode="stretch_width", stylesheets=[_ENTRY_CSS]),
            button,
            sizing_mode="stretch_width",
        )
