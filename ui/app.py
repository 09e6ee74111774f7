"""Assemble the app: cursor controls above the seven linked tabs.

Serve it with ``glassnet serve`` or ``panel serve ui/app.py``.  The folder of
session files comes from ``GLASSNET_SESSIONS`` (default ``runs``); the app
opens the demo session there, recording it first if it is missing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import holoviews as hv
import panel as pn

from ui.state import AppState
from ui.tabs import TABS

__all__ = ["create_app", "ensure_demo"]

logger = logging.getLogger(__name__)

pn.extension(notifications=True)
hv.extension("bokeh", logo=False)

DEMO_NAME = "demo.session"


def ensure_demo(sessions_dir: str | Path) -> Path:
    """Return the demo session in ``sessions_dir``, recording it if missing."""
    path = Path(sessions_dir) / DEMO_NAME
    if not path.exists():
        from ui.cli import main

        main(["demo", "--out", str(path)])
    return path


def create_app(
    sessions_dir: str | Path | None = None, session: str | Path | None = None
) -> pn.viewable.Viewable:
    """Build one user's app on its own :class:`AppState`.

    ``session`` is the file to open first (default: the demo session).
    """
    folder = Path(sessions_dir or os.environ.get("GLASSNET_SESSIONS", "runs"))
    state = AppState(sessions_dir=str(folder))
    state.open(session if session is not None else ensure_demo(folder))
    tabs = pn.Tabs(*[(t.title, t(state=state)) for t in TABS], dynamic=True)
    tabs.link(state, active="tab", bidirectional=True)
    slider = pn.widgets.IntSlider.from_param(state.param.step, name="Step")
    return pn.template.BootstrapTemplate(title="glassnet", main=[pn.Row(slider), tabs])


if __name__.startswith("bokeh"):
    create_app().servable()
