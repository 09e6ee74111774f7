"""Tab 4: predictions against targets, the loss of each sample and over the run."""

from __future__ import annotations

import panel as pn

from ui.tabs.base import Tab

__all__ = ["LossTab"]


class LossTab(Tab):
    """predictions against targets, the loss of each sample and over the run."""

    title = "Loss"
    index = 3

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._view = pn.pane.Markdown(f"## {self.title}")

    def _update(self) -> None:
        self._view.object = f"## {self.title}: step {self.state.step}"

    def __panel__(self) -> pn.viewable.Viewable:
        return self._view
