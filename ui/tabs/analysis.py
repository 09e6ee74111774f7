"""Tab 7: activations, gradient health, dead and saturated units, weights."""

from __future__ import annotations

import panel as pn

from ui.tabs.base import Tab

__all__ = ["AnalysisTab"]


class AnalysisTab(Tab):
    """activations, gradient health, dead and saturated units, weights."""

    title = "Analysis"
    index = 6

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._view = pn.pane.Markdown(f"## {self.title}")

    def _update(self) -> None:
        self._view.object = f"## {self.title}: step {self.state.step}"

    def __panel__(self) -> pn.viewable.Viewable:
        return self._view
