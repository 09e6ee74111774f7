"""Assemble the app: header, session library, cursor controls, the seven tabs.

Serve it with ``glassnet serve`` or ``panel serve ui/app.py
--websocket-max-message-size 41943040`` (room for uploads, see
:data:`ui.upload.WEBSOCKET_MAX_MESSAGE_BYTES`).  The folder of
session files comes from ``GLASSNET_SESSIONS`` (default ``runs``); the app
opens the demo session there, recording it first if it is missing.  The URL
carries ``session``, ``step``, ``op`` and ``tab`` (see the README).  Served
to a class (``glassnet serve --users``/``--oauth-provider``), each signed-in
person gets their own workspace and the class library (docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import re
import weakref
from pathlib import Path
from typing import Any

import holoviews as hv
import panel as pn
from panel.io.resources import LOCAL_DIST
from tornado.websocket import WebSocketClosedError

from sessions import SessionError
from sessions.workspace import ClassAccess, Workspace
from ui.cursor import CursorControls
from ui.explain_panel import ExplainPanel
from ui.export import PlotFileNames
from ui.guide import GuidePanel
from ui.library import SessionLibrary
from ui.state import AppState
from ui.tabs import TABS
from ui.trust import TrustBadge

__all__ = ["FOLLOW_PERIOD_MS", "App", "create_app", "ensure_demo", "hide_paths"]

logger = logging.getLogger(__name__)

pn.extension(notifications=True)
hv.extension("bokeh", logo=False)

DEMO_NAME = "demo.session"
FOLLOW_PERIOD_MS = 1000
"""How often a session still being recorded is re-read (milliseconds)."""

# Panes render in their own shadow root, so their CSS goes in ``stylesheets``.
_MESSAGE_CSS = """
.glassnet-message { background: #fdecea; color: #611a15; border: 1px solid #f5c2c7;
  border-radius: 4px; padding: 6px 10px; white-space: pre-wrap; }
"""

# A long unbroken title wraps instead of overflowing the header.
_TITLE_CSS = """
.glassnet-title-text { font-size: 1.3em; color: white; overflow-wrap: anywhere;
  display: block; max-height: 2.6em; overflow: hidden; }
.glassnet-user { color: white; white-space: nowrap; }
.glassnet-user a { color: white; margin-left: 0.8em; }
"""

# An absolute path ("/srv/runs/a.session"): everything up to the file name.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:[^\s/'\"`]+/)+([^\s/'\"`]+)")


def hide_paths(text: str, folder: str | Path | None = None) -> str:
    """Return ``text`` with every file path shortened to its file name.

    Messages come from errors that name files by their path on the server;
    users see only the file name (``folder``, the sessions folder, may be
    relative: it is removed too).
    """
    if folder is not None and str(folder) not in ("", "."):
        text = text.replace(str(folder).rstrip("/") + "/", "")
    return _ABSOLUTE_PATH.sub(r"\1", text)


def ensure_demo(sessions_dir: str | Path) -> Path:
    """Return the demo session in ``sessions_dir``, recording it if missing."""
    path = Path(sessions_dir) / DEMO_NAME
    if not path.exists():
        from ui.cli import main

        main(["demo", "--out", str(path)])
    return path


class App:
    """One user's app: the state, the controls, the tabs and their wiring.

    Built once per browser session by :func:`create_app`; ``template`` is
    what is served.  ``sessions_dir`` is one folder (one person, no
    accounts) or a signed-in user's :class:`~sessions.workspace.Workspace`.
    """

    def __init__(
        self, sessions_dir: Path | Workspace, session: str | Path | None
    ) -> None:
        if isinstance(sessions_dir, Workspace):
            workspace = sessions_dir
        else:
            workspace = Workspace.single(sessions_dir)
        self.workspace = workspace
        self.state = state = AppState(sessions_dir=str(workspace.own.path))
        self.cursor = CursorControls(state=state)
        self.library = SessionLibrary(state=state, workspace=workspace)
        self.trust = TrustBadge(state=state)
        self.guide = GuidePanel(state=state, folder_of=workspace.find)
        self.explainer = ExplainPanel(state=state)
        self._follow: Any = None

        self.title = pn.pane.HTML(
            "",
            css_classes=["glassnet-title"],
            stylesheets=[_TITLE_CSS],
        )
        header: list[Any] = [self.title]
        if workspace.user is not None:
            user = workspace.user
            self.user_label = pn.pane.HTML(
                f"<span class='glassnet-user'>{html.escape(user.name)} "
                f"({user.role}) <a href='./logout'>Sign out</a></span>",
                stylesheets=[_TITLE_CSS],
            )
            header.append(self.user_label)
        self.message = pn.pane.HTML(
            "", sizing_mode="stretch_width", stylesheets=[_MESSAGE_CSS]
        )
        self.dismiss = pn.widgets.Button(label="Dismiss", width=80)
        self.message_row = pn.Row(
            self.message, self.dismiss, visible=False, sizing_mode="stretch_width"
        )
        self.tabs = pn.Tabs(
            *[(t.title, t(state=state)) for t in TABS],
            dynamic=True,
            sizing_mode="stretch_width",
        )
        self.tabs.link(state, active="tab", bidirectional=True)
        # After the tabs' own watchers: plots saved as PNG name session and step.
        self.plot_names = PlotFileNames(state, self.tabs)

        state.param.watch(self._update_message, "message")
        state.param.watch(self._update_title, "session")
        state.param.watch(self._on_state_session, "session")
        self.library.param.watch(self._update_title, "revision")
        self.dismiss.on_click(self._on_dismiss_click)

        if session is None:
            session = _first_session(workspace)
        if session is not None:
            state.open(session)
        self.library.refresh()
        self._update_title()
        self._update_message()

        self.template = pn.template.BootstrapTemplate(
            title="glassnet",
            header=header,
            sidebar=[self.library],
            main=[
                self.message_row,
                self.trust,
                self.cursor,
                self.explainer,
                self.guide,
                self.tabs,
            ],
            sidebar_width=340,
        )
        if pn.state.location is not None:
            pn.state.location.sync(
                self.cursor.moment,
                {"session": "session", "step": "step", "op": "op", "tab": "tab"},
                on_error=self._on_url_error,
            )
            pn.state.onload(self._update_url)
        if pn.state.curdoc is not None and pn.state.curdoc.session_context:
            pn.state.on_session_destroyed(self._on_session_destroyed)
        self._on_state_session()

    # -- following a run still being recorded -----------------------------

    def follow_tick(self) -> None:
        """Re-read a session still being written; stop once the run has ended."""
        session = self.state.session
        if session is None or session.status != "incomplete":
            self.stop_following()
            self.library.update_live()
            return
        try:
            self.state.refresh()
        except Exception as err:  # a damaged file must not kill the callback
            self.state.message = f"Could not follow {session.path.name}: {err}"
            self.stop_following()
        # The run may have ended: its library entry then shows how.
        self.library.update_live()

    def stop_following(self) -> None:
        """Stop re-reading the session file."""
        if self._follow is not None:
            self._follow.stop()
            self._follow = None

    def _on_state_session(self, *_: Any) -> None:
        session = self.state.session
        live = session is not None and session.status == "incomplete"
        if live and self._follow is None and pn.state.curdoc is not None:
            self._follow = pn.state.add_periodic_callback(
                self.follow_tick, period=FOLLOW_PERIOD_MS
            )
        elif not live:
            self.stop_following()

    def _on_session_destroyed(self, _: Any) -> None:
        self.stop_following()
        if self.state.session is not None:
            self.state.session.close()

    # -- handlers and refreshers ------------------------------------------

    def _on_dismiss_click(self, _: Any) -> None:
        self.state.message = ""

    def _on_url_error(self, values: dict[str, Any]) -> None:
        self.state.message = f"The link holds values that do not fit: {values}."

    def _update_url(self) -> None:
        """Write the whole moment into the URL, so a copied link is complete."""
        moment = self.cursor.moment.param.values()
        query = {k: moment[k] for k in ("session", "step", "op", "tab")}
        if pn.state.location is not None:
            pn.state.location.update_query(
                **{k: str(v) for k, v in query.items() if v is not None}
            )

    def _update_title(self, *_: Any) -> None:
        session = self.state.session
        text = "no session open" if session is None else session.title
        self.title.object = (
            f"<span class='glassnet-title-text'>{html.escape(text)}</span>"
        )

    def _update_message(self, *_: Any) -> None:
        text = hide_paths(self.state.message, self.state.sessions_dir)
        self.message.object = (
            f"<div class='glassnet-message' role='alert'>{html.escape(text)}</div>"
        )
        self.message_row.visible = bool(text)
        if text and pn.state.notifications is not None:
            pn.state.notifications.warning(html.escape(text), duration=6000)


def create_app(
    sessions_dir: str | Path | None = None,
    session: str | Path | None = None,
    *,
    access: ClassAccess | None = None,
) -> pn.viewable.Viewable:
    """Build one user's app on its own :class:`AppState`.

    ``session`` is the file to open first (default: the demo session, which
    is recorded into ``sessions_dir`` if missing).  With ``access`` (a class
    served with accounts), the signed-in user (``pn.state.user``) gets their
    workspace and the class library instead, and ``sessions_dir`` is unused.
    """
    _serve_styles_locally()
    _drop_writes_to_closed_pages()
    if access is not None:
        try:
            workspace = access.workspace(pn.state.user)
        except SessionError as err:
            logger.warning("Refused a browser session: %s", err)
            return _refusal(str(err))
        return App(workspace, session).template
    folder = Path(sessions_dir or os.environ.get("GLASSNET_SESSIONS", "runs"))
    folder.mkdir(parents=True, exist_ok=True)
    return App(folder, session).template


def _serve_styles_locally() -> None:
    """Make the served session's stylesheets point at this server, never a CDN.

    Panel gives components stylesheet addresses on its CDN and rewrites them to
    the server's ``static/`` copies with the document's ``dist_url``, which it
    sets when it renders the page.  A session can also begin on a websocket
    with no page: Bokeh discards a session that no browser joined within
    ``--unused-session-lifetime`` (15 s; a loaded server can take longer to
    send a page's scripts) and makes a new one when the browser connects.
    That document had no ``dist_url``, so its pages asked the CDN for their
    styles, which a classroom server without internet cannot reach.  Setting
    it here, before any model exists, keeps every session on local files.
    """
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return
    rel = pn.state.rel_path
    local = f"{rel}/{LOCAL_DIST}" if rel else LOCAL_DIST
    doc.template_variables.setdefault("dist_url", local)


_QUIET_LOOPS: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _drop_writes_to_closed_pages() -> None:
    """Let a message to a page that has closed fail quietly, as Bokeh's own do.

    Panel writes some updates straight to the websocket and leaves the
    write's future alone; when the student closed the page meanwhile, asyncio
    logged "Task exception was never retrieved" with a traceback for each one.
    Nothing is lost (the page is gone), so the server log should not say
    something failed.  Other unhandled errors still go to the handler before.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not served: no websocket to write to
        return
    if loop in _QUIET_LOOPS:
        return
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), WebSocketClosedError):
            logger.debug("Dropped a message to a closed page: %s", context)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    _QUIET_LOOPS.add(loop)


def _first_session(workspace: Workspace) -> Path | None:
    """Return the session to show first: the demo, from the library if there is one."""
    if workspace.library is None:
        return ensure_demo(workspace.own.path)
    demo = workspace.library.path / DEMO_NAME
    return demo if workspace.library.contains(demo) and demo.is_file() else None


def _refusal(text: str) -> pn.viewable.Viewable:
    """Return the page shown instead of the app to someone who may not use it."""
    return pn.Column(
        pn.pane.HTML("<h2>glassnet</h2>"),
        pn.pane.HTML(
            f"<div class='glassnet-message' role='alert'>{html.escape(text)}</div>",
            stylesheets=[_MESSAGE_CSS],
        ),
        pn.pane.HTML("<a href='./logout'>Sign out</a>"),
    )


if __name__.startswith("bokeh"):
    create_app().servable(title="glassnet")
