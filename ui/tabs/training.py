"""Tab 5: train a new run live; gradients and updates at the cursor step."""

from __future__ import annotations

import panel as pn

from ui.tabs.base import Tab

__all__ = ["TrainingTab"]


class TrainingTab(Tab):
    """train a new run live; gradients and updates at the cursor step."""

    title = "Training cycle"
    index = 4

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._view = pn.pane.Markdown(f"## {self.title}")

    def _update(self) -> None:
        self._view.object = f"## {self.title}: step {self.state.step}"

    def __panel__(self) -> pn.viewable.Viewable:
        return self._view
