"""Tab 1: build a network, or see the open session's network."""

from __future__ import annotations

import panel as pn
import param

from ui.state import AppState

__all__ = ["NetworkTab"]


class NetworkTab(pn.viewable.Viewer):
    """build a network, or see the open session's network."""

    title = "Network"

    state = param.ClassSelector(class_=AppState, doc="The cursor shared by all tabs.")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.pane.Markdown(f"## {self.title}")
