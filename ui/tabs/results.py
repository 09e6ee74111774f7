"""Tab 6: metrics, confusion matrices and decision boundary at the cursor step."""

from __future__ import annotations

import panel as pn
import param

from ui.state import AppState

__all__ = ["ResultsTab"]


class ResultsTab(pn.viewable.Viewer):
    """metrics, confusion matrices and decision boundary at the cursor step."""

    title = "Training results"

    state = param.ClassSelector(class_=AppState, doc="The cursor shared by all tabs.")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.pane.Markdown(f"## {self.title}")
