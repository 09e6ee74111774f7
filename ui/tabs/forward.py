"""Tab 3: follow one sample through every layer at the cursor step."""

from __future__ import annotations

import panel as pn
import param

from ui.state import AppState

__all__ = ["ForwardTab"]


class ForwardTab(pn.viewable.Viewer):
    """follow one sample through every layer at the cursor step."""

    title = "Forward propagation"

    state = param.ClassSelector(class_=AppState, doc="The cursor shared by all tabs.")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.pane.Markdown(f"## {self.title}")
