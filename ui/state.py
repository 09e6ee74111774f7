"""Hold the one cursor every tab follows: the open session, the step, the operation."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import param

from engine import events as ev
from engine.data import Dataset
from engine.network import NetworkSpec, Params, Trace, forward
from sessions import Session, SessionError

__all__ = ["AppState", "describe_operation"]

logger = logging.getLogger(__name__)


def describe_operation(event: ev.Event) -> str:
    """Return a short label for one operation, as the cursor controls show it."""
    layer = "" if event.layer is None else f" of layer {event.layer + 1}"
    if isinstance(event, ev.WeightedSumComputed):
        return f"weighted sum z{layer}"
    if isinstance(event, ev.ActivationComputed):
        return f"activation a = {event.activation}(z){layer}"
    if isinstance(event, ev.DropoutApplied):
        return f"dropout mask{layer}"
    if isinstance(event, ev.GradientComputed):
        return f"gradient {event.name}{layer}"
    if isinstance(event, ev.ParametersUpdated):
        return f"update of {event.name}{layer}"
    if isinstance(event, ev.ParametersInitialized):
        return f"initial W and b{layer}"
    labels = {
        "session_started": "session started",
        "batch_sampled": "batch sampled",
        "loss_computed": "loss",
        "step_completed": "step summary",
        "epoch_completed": "epoch metrics",
        "training_diverged": "training diverged",
        "session_ended": "session ended",
    }
    return labels.get(event.kind, event.kind.replace("_", " "))


class AppState(param.Parameterized):
    """The state shared by the seven tabs: they read and set it, never each other.

    ``step`` and ``op`` form the cursor; ``events`` always holds every event of
    ``step`` (rebuilt from the session file) and ``event`` the one at ``op``.
    """

    session = param.ClassSelector(
        class_=Session, default=None, allow_None=True, doc="The open session file."
    )
    step = param.Integer(default=0, bounds=(0, 0), doc="The step the cursor is on.")
    op = param.Integer(
        default=0, bounds=(0, 0), doc="The operation (event) within the step."
    )
    sample = param.Integer(
        default=0, bounds=(0, None), doc="The selected sample of the step's batch."
    )
    layer = param.Integer(default=0, bounds=(0, None), doc="The selected layer.")
    neuron = param.Integer(
        default=0, bounds=(0, None), doc="The selected unit of the selected layer."
    )
    tab = param.Integer(default=0, bounds=(0, 6), doc="The visible tab (0 to 6).")
    events = param.List(
        default=[], constant=True, doc="Every event of the cursor's step, in order."
    )
    message = param.String(
        default="", doc="The latest problem to show the user (empty: none)."
    )
    bookmarks = param.List(
        default=[], doc="The open session's automatic bookmarks, ordered by step."
    )

    # What the next training run will use (tabs 1, 2 and 5 build it).
    sessions_dir = param.String(
        default="runs", doc="Folder where this user's session files are kept."
    )
    design = param.ClassSelector(
        class_=NetworkSpec,
        default=None,
        allow_None=True,
        doc="The network built on tab 1 for the next run (None: not built yet).",
    )
    initial_values = param.Dict(
        default={},
        doc="Initial values set by hand on tab 1: {(layer, 'W' or 'b', index): value}.",
    )
    data = param.ClassSelector(
        class_=Dataset,
        default=None,
        allow_None=True,
        doc="The dataset chosen on tab 2 for the next run (None: not chosen yet).",
    )
    data_source = param.Dict(
        default={},
        doc="How ``data`` was made (built-in name and options, or CSV settings).",
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._predictions: dict[tuple[int, int, str], Trace] = {}

    # -- opening ---------------------------------------------------------

    def open(self, path: str | Path) -> bool:
        """Open a session file and put the cursor on its step 0.

        Returns False and sets ``message`` when the file cannot be opened;
        the session shown before stays open.
        """
        try:
            session = Session(path)
            session.dataset  # noqa: B018 - read now, so a bad dataset fails here
        except SessionError as err:
            self.message = str(err)
            logger.info("Could not open %s: %s", path, err)
            return False
        old = self.session
        self.set_session(session)
        if old is not None:
            old.close()
        return True

    def set_session(self, session: Session) -> None:
        """Show ``session``, with the cursor at step 0, operation 0."""
        with param.parameterized.batch_call_watchers(self):
            self.session = session
            self.param.step.bounds = (0, max(session.n_steps - 1, 0))
            self.step = 0
            self.op = 0
            self.sample = 0
            self.layer = 0
            self.neuron = 0
            self.message = ""
        self._load_step()

    def refresh(self) -> None:
        """Re-read a session another process is still writing; extend the slider."""
        if self.session is None:
            return
        self.session.refresh()
        self.param.step.bounds = (0, max(self.session.n_steps - 1, 0))

    # -- moving the cursor -----------------------------------------------

    @property
    def n_steps(self) -> int:
        """Return the number of steps the cursor can reach."""
        return 0 if self.session is None else self.session.n_steps

    @property
    def event(self) -> ev.Event | None:
        """Return the event under the cursor, or None without a session.

        While a new step's events are being set, ``op`` may still point past
        their end for a moment; the last event is returned then.
        """
        if not self.events:
            return None
        return self.events[min(self.op, len(self.events) - 1)]

    def operations(self) -> list[str]:
        """Return the label of every operation of the step, in order."""
        return [describe_operation(e) for e in self.events]

    def next_op(self) -> None:
        """Move to the next operation, into the next step after the last one."""
        if self.op + 1 < len(self.events):
            self.op += 1
        elif self.step + 1 < self.n_steps:
            self.go_to(self.step + 1, 0)

    def previous_op(self) -> None:
        """Move to the previous operation, into the previous step's last one."""
        if self.op > 0:
            self.op -= 1
        elif self.step > 0:
            self.step -= 1
            self.op = len(self.events) - 1

    def go_to(self, step: int, op: int = 0) -> None:
        """Put the cursor on ``step`` (clipped to the run) and operation ``op``."""
        step = min(max(int(step), 0), max(self.n_steps - 1, 0))
        with param.parameterized.batch_call_watchers(self):
            self.step = step
        self.op = min(max(int(op), 0), max(len(self.events) - 1, 0))

    def events_of(self, kind: type[ev.Event]) -> list[Any]:
        """Return the step's events of one class, in order."""
        return [e for e in self.events if isinstance(e, kind)]

    # -- values at the cursor --------------------------------------------

    def params(self) -> Params | None:
        """Return the parameters the cursor's step used (before its update).

        Read from the step's ``WeightedSumComputed`` events; None without a
        session or when the step has none.
        """
        sums = self.events_of(ev.WeightedSumComputed)
        if not sums:
            return None
        return [{"W": e.W, "b": e.b} for e in sums]

    def predict(self, split: str = "train") -> Trace | None:
        """Return the forward pass of a whole split with the cursor's parameters.

        ``split`` is ``"train"`` or ``"test"``.  The result is cached per step
        and split, so every tab that asks at one cursor position shares it.
        Dropout is off, as in evaluation.  None without a session.
        """
        params = self.params()
        if self.session is None or params is None:
            return None
        key = (id(self.session), self.step, split)
        if key not in self._predictions:
            data = self.session.dataset
            X = data.X_train if split == "train" else data.X_test
            with np.errstate(all="ignore"):
                trace = forward(params, X, self.session.spec.activations())
            # NOTE: only the current step's passes are kept (one per split).
            self._predictions = {
                k: v for k, v in self._predictions.items() if k[:2] == key[:2]
            }
            self._predictions[key] = trace
        return self._predictions[key]

    @param.depends("step", watch=True)
    def _load_step(self) -> None:
        if self.session is None:
            events: list[ev.Event] = []
        else:
            try:
                events = self.session.step_events(self.step)
            except SessionError as err:
                self.message = str(err)
                events = []
        with param.edit_constant(self):
            self.events = events
        self.param.op.bounds = (0, max(len(events) - 1, 0))
        if self.op >= len(events):
            self.op = max(len(events) - 1, 0)
