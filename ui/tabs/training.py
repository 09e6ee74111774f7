"""Tab 5: train a new run live; gradients and updates at the cursor step."""

from __future__ import annotations

import panel as pn
import param

from ui.state import AppState

__all__ = ["TrainingTab"]


class TrainingTab(pn.viewable.Viewer):
    """train a new run live; gradients and updates at the cursor step."""

    title = "Training cycle"

    state = param.ClassSelector(class_=AppState, doc="The cursor shared by all tabs.")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.pane.Markdown(f"## {self.title}")
