"""Tab 1: build a network, or see the open session's network."""

from __future__ import annotations

import panel as pn

from ui.tabs.base import Tab

__all__ = ["NetworkTab"]


class NetworkTab(Tab):
    """build a network, or see the open session's network."""

    title = "Network"
    index = 0

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._view = pn.pane.Markdown(f"## {self.title}")

    def _update(self) -> None:
        self._view.object = f"## {self.title}: step {self.state.step}"

    def __panel__(self) -> pn.viewable.Viewable:
        return self._view
