"""Tab 3: follow one sample through every layer at the cursor step."""

from __future__ import annotations

import panel as pn

from ui.tabs.base import Tab

__all__ = ["ForwardTab"]


class ForwardTab(Tab):
    """follow one sample through every layer at the cursor step."""

    title = "Forward propagation"
    index = 2

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._view = pn.pane.Markdown(f"## {self.title}")

    def _update(self) -> None:
        self._view.object = f"## {self.title}: step {self.state.step}"

    def __panel__(self) -> pn.viewable.Viewable:
        return self._view
