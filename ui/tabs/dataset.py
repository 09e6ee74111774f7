"""Tab 2: pick a built-in dataset or import a CSV, and look at it."""

from __future__ import annotations

import panel as pn
import param

from ui.state import AppState

__all__ = ["DatasetTab"]


class DatasetTab(pn.viewable.Viewer):
    """pick a built-in dataset or import a CSV, and look at it."""

    title = "Dataset"

    state = param.ClassSelector(class_=AppState, doc="The cursor shared by all tabs.")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.pane.Markdown(f"## {self.title}")
