"""Tab 4: predictions against targets, the loss of each sample and over the run."""

from __future__ import annotations

import panel as pn
import param

from ui.state import AppState

__all__ = ["LossTab"]


class LossTab(pn.viewable.Viewer):
    """predictions against targets, the loss of each sample and over the run."""

    title = "Loss"

    state = param.ClassSelector(class_=AppState, doc="The cursor shared by all tabs.")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.pane.Markdown(f"## {self.title}")
