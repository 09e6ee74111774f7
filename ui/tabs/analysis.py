"""Tab 7: activations, gradient health, dead and saturated units, weights."""

from __future__ import annotations

import panel as pn
import param

from ui.state import AppState

__all__ = ["AnalysisTab"]


class AnalysisTab(pn.viewable.Viewer):
    """activations, gradient health, dead and saturated units, weights."""

    title = "Analysis"

    state = param.ClassSelector(class_=AppState, doc="The cursor shared by all tabs.")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.pane.Markdown(f"## {self.title}")
