"""The session library in the sidebar: list, open, upload, name and share sessions."""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Any

import panel as pn
import param

from sessions import Session, SessionError
from sessions.library import (
    MAX_DESCRIPTION_CHARS,
    MAX_TITLE_CHARS,
    SessionFolder,
    SessionInfo,
    check_name,
)
from sessions.workspace import Workspace
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
    folder: str | Path | SessionFolder, filename: str | None, content: bytes | None
) -> Path:
    """Check an uploaded session file and keep it in ``folder``; return its path.

    The name must be plain (see :func:`sessions.library.check_name`) and new in
    the folder, the folder writable for the user, the content at most
    :data:`MAX_UPLOAD_BYTES`, and the file must open as a glassnet session
    with its dataset, its first and last steps rebuilt exactly.  Nothing is
    kept otherwise.

    Raises
    ------
    SessionError
        With a message for the user, when any check fails.
    """
    if not isinstance(folder, SessionFolder):
        folder = SessionFolder(Path(folder))
    if not filename or content is None:
        raise SessionError("No file was uploaded: choose a .session file first.")
    name = os.path.basename(str(filename).replace("\\", "/"))
    if name != filename:
        msg = f"{filename!r} names a folder; upload a file with a plain name."
        raise SessionError(msg)
    check_name(name)
    folder.require_writable("upload into")
    if len(content) > MAX_UPLOAD_BYTES:
        msg = size_message(
            name, len(content), MAX_UPLOAD_BYTES, "session files", _TOO_LARGE_ADVICE
        )
        raise SessionError(msg)
    data = content

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    def check(tmp: Path) -> None:
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

    target = folder.keep(name, write, check)
    logger.info("Kept uploaded session %s", target)
    return target


class SessionLibrary(pn.viewable.Viewer):
    """List the user's sessions; open, upload, describe, and share them.

    Without accounts there is one folder.  Served to a class, the list has
    two parts: the user's own workspace and the class library, which only
    instructors change (they also get a button that copies the open session
    into it).  Every change is checked by the folder itself
    (:class:`~sessions.library.SessionFolder`), not only by hiding buttons.
    Titles and descriptions are user text: always shown escaped.
    """

    state = param.ClassSelector(
        class_=AppState, doc="The cursor the library opens into."
    )
    workspace = param.ClassSelector(
        class_=Workspace,
        default=None,
        allow_None=True,
        doc="The folders this user may reach (None: the state's one folder).",
    )
    revision = param.Integer(
        default=0, doc="Grows each time a title or description is saved."
    )

    def __init__(self, **params: Any) -> None:
        if params.get("state") is None:
            params["state"] = AppState()
        super().__init__(**params)
        if self.workspace is None:
            self.workspace = Workspace.single(self.state.sessions_dir)
        self.infos: list[SessionInfo] = []
        self.library_infos: list[SessionInfo] = []
        # The open session's path while its run is still being recorded.
        self._live: str | None = None
        self.refresh_button = pn.widgets.Button(label="Refresh list", width=110)
        self.items = pn.Column(sizing_mode="stretch_width")
        self.library_items = pn.Column(sizing_mode="stretch_width")
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
        self.read_only_note = pn.pane.HTML(
            "<small>The class library is read-only for you: this session's title "
            "cannot be changed.</small>",
            visible=False,
        )
        self.publish_name = pn.widgets.TextInput(
            label="Name in the class library", sizing_mode="stretch_width"
        )
        self.publish_button = pn.widgets.Button(
            label="Copy to the class library", width=200
        )
        self.refresh_button.on_click(self._on_refresh_button_click)
        self.save_button.on_click(self._on_save_button_click)
        self.publish_button.on_click(self._on_publish_button_click)
        self.upload.param.watch(self._on_upload_value, ["filename", "value"])
        self.state.param.watch(self._update_editor, "session")
        self.state.param.watch(self._on_state_session, "session")
        self._layout = pn.Column(*self._sections(), sizing_mode="stretch_width")
        self.refresh()
        self._update_editor()
        self._on_state_session()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _sections(self) -> list[Any]:
        """Return the sidebar's parts: the lists, upload, describe, share."""
        library = self.workspace.library
        if library is None:
            lists: list[Any] = [pn.pane.HTML("<b>Sessions</b>"), self.items]
        else:
            access = "" if library.writable else " (read-only)"
            lists = [
                pn.pane.HTML("<b>My sessions</b>"),
                self.items,
                pn.pane.HTML(f"<b>Class library</b>{access}"),
                self.library_items,
            ]
        parts: list[Any] = [
            self.refresh_button,
            *lists,
            pn.pane.HTML(
                f"<b>Upload</b> a .session file (at most "
                f"{MAX_UPLOAD_BYTES // 2**20} MiB)"
            ),
            self.upload,
            pn.pane.HTML("<b>Describe</b> the open session"),
            self.title_input,
            self.description_input,
            self.save_button,
            self.read_only_note,
        ]
        if library is not None and library.writable:
            parts += [
                pn.pane.HTML("<b>Share</b> the open session with the class"),
                self.publish_name,
                self.publish_button,
            ]
        return parts

    # -- actions -----------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the folders and rebuild the lists."""
        own, library = self.workspace.own, self.workspace.library
        self.infos = own.sessions()
        self.items[:] = self._rows(self.infos, library=False)
        if library is not None:
            self.library_infos = library.sessions()
            self.library_items[:] = self._rows(self.library_infos, library=True)

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

    def open(self, name: str, *, library: bool = False) -> bool:
        """Open the listed session ``name`` (of the class library if ``library``).

        Returns False, with a message, if it is not listed or cannot be opened.
        """
        infos = self.library_infos if library else self.infos
        info = next((i for i in infos if i.name == name), None)
        if info is None:
            self.state.message = f"{name!r} is not in the list; refresh the list."
            return False
        if info.damaged:
            self.state.message = f"{name} cannot be opened: {info.damaged}"
            return False
        try:
            path = self.workspace.file(name, library=library)
        except SessionError as err:
            self.state.message = str(err)
            return False
        return self.state.open(path)

    def save_title(self, title: str, description: str | None) -> bool:
        """Write a title (and description) into the open session file.

        Only a file in one of the user's folders that they may change is
        written; anything else gives a message.
        """
        session = self.state.session
        if session is None:
            self.state.message = "Open a session before giving it a title."
            return False
        folder = self.workspace.find(session.path)
        if folder is None:
            self.state.message = (
                f"{session.path.name} is not in your folders; only files there "
                "can be renamed."
            )
            return False
        try:
            info = folder.set_title(session.path.name, title, description)
        except SessionError as err:
            self.state.message = str(err)
            return False
        session.meta["title"] = info.title
        session.meta["description"] = info.description
        self.revision += 1
        self.refresh()
        return True

    def publish(self, name: str) -> bool:
        """Copy the open session into the class library as ``name`` (instructors).

        Returns False, with a message, when the user may not or it fails.
        """
        session = self.state.session
        if session is None:
            self.state.message = "Open a session before copying it to the library."
            return False
        try:
            self.workspace.publish(session.path, name.strip())
        except SessionError as err:
            self.state.message = str(err)
            return False
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
        own = self.workspace.own
        if own.contains(session.path) and session.path.name not in {
            i.name for i in self.infos
        }:
            self.refresh()

    def _on_save_button_click(self, _: Any) -> None:
        self.save_title(self.title_input.value, self.description_input.value)

    def _on_publish_button_click(self, _: Any) -> None:
        self.publish(self.publish_name.value)

    def _on_upload_refused(self, text: str) -> None:
        self.state.message = text

    def _on_upload_value(self, *_: Any) -> None:
        if self.upload.value is None:
            return
        try:
            path = keep_upload(
                self.workspace.own, self.upload.filename, self.upload.value
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
        folder = None if session is None else self.workspace.find(session.path)
        read_only = folder is not None and not folder.writable
        for widget in (self.title_input, self.description_input, self.save_button):
            widget.disabled = read_only
        self.read_only_note.visible = read_only
        self.publish_name.value = "" if session is None else session.path.name

    def _rows(self, infos: list[SessionInfo], *, library: bool) -> list[Any]:
        """Return the entries of one list, or a line saying it is empty."""
        if not infos:
            where = "the class library" if library else "this folder"
            return [pn.pane.HTML(f"<i>No session files in {where} yet.</i>")]
        return [self._row(info, library=library) for info in infos]

    def _row(self, info: SessionInfo, *, library: bool) -> pn.viewable.Viewable:
        """Return one entry of a list: what the file holds and an Open button."""
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
        button.on_click(lambda _, n=info.name: self.open(n, library=library))
        return pn.Row(
            pn.pane.HTML(text, sizing_mode="stretch_width", stylesheets=[_ENTRY_CSS]),
            button,
            sizing_mode="stretch_width",
        )
