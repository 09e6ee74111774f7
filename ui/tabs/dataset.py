"""Tab 2: pick a built-in dataset or import a CSV, and look at it."""

from __future__ import annotations

import panel as pn

from ui.tabs.base import Tab

__all__ = ["DatasetTab"]


class DatasetTab(Tab):
    """pick a built-in dataset or import a CSV, and look at it."""

    title = "Dataset"
    index = 1

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._view = pn.pane.Markdown(f"## {self.title}")

    def _update(self) -> None:
        self._view.object = f"## {self.title}: step {self.state.step}"

    def __panel__(self) -> pn.viewable.Viewable:
        return self._view
