"""What every tab shares: the cursor it follows and updates only while visible."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import panel as pn
import param

from sessions import SessionError
from ui.state import AppState

__all__ = ["Tab"]

logger = logging.getLogger(__name__)


class Tab(pn.viewable.Viewer):
    """One tab of the app, following the shared :class:`AppState`.

    A subclass sets ``title``, ``index`` (its position, 0 to 6), ``help`` (the
    one-line "how to use" shown on the tab) and ``watches`` (the ``AppState``
    parameters it depends on), builds its panes once in ``__init__`` and
    fills them in :meth:`_update`.  ``_update`` runs only while the tab is
    visible: a cursor move on another tab just marks this one stale, and it
    catches up when it is shown.  That keeps a cursor move as cheap as the one
    visible tab.
    """

    title: ClassVar[str] = ""
    index: ClassVar[int] = -1
    help: ClassVar[str] = ""
    watches: ClassVar[tuple[str, ...]] = ("session", "events", "op")

    state = param.ClassSelector(
        class_=AppState, doc="The cursor shared by all tabs; tabs talk only to it."
    )

    def __init__(self, **params: Any) -> None:
        if params.get("state") is None:
            params["state"] = AppState()
        super().__init__(**params)
        self._stale = True
        self.state.param.watch(self._on_state, list(self.watches))
        self.state.param.watch(self._on_tab, ["tab"])

    @property
    def visible(self) -> bool:
        """Return True while this tab is the one shown."""
        return self.state.tab == self.index

    def refresh(self) -> None:
        """Bring every pane up to date with the state now, visible or not.

        A damaged session file is reported through ``state.message`` instead
        of breaking the tab; a diverged run's overflowing numbers are shown
        without NumPy warnings.
        """
        self._stale = False
        try:
            with pn.io.hold(), np.errstate(all="ignore"):
                self._update()
        except SessionError as err:
            self.state.message = str(err)
            logger.info("Could not update %s: %s", self.title, err)

    def _on_state(self, *_: Any) -> None:
        if self.visible:
            self.refresh()
        else:
            self._stale = True

    def _on_tab(self, *_: Any) -> None:
        if self.visible and self._stale:
            self.refresh()

    def _update(self) -> None:
        """Fill the panes from the state (subclasses implement this)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _update")
