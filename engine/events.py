"""Define the events the engine emits: one immutable fact per computation.

Every event carries the same header: ``seq`` (its position in the session log, from
0, strictly +1), ``step`` (the optimizer step it belongs to), ``epoch`` and ``layer``
(0-based layer index, or None when the event is not about one layer).  Arrays in an
event are never mutated after the event is emitted: the engine always builds new
arrays instead of updating old ones in place, so an event may hold references.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine._types import Array, IntArray

__all__ = [
    "EVENT_TYPES",
    "KINDS",
    "ActivationComputed",
    "BatchSampled",
    "DropoutApplied",
    "EpochCompleted",
    "Event",
    "GradientComputed",
    "LossComputed",
    "ParametersInitialized",
    "ParametersUpdated",
    "SessionEnded",
    "SessionStarted",
    "StepCompleted",
    "TrainingDiverged",
    "WeightedSumComputed",
]

GRADIENT_NAMES = ("dy_hat", "da", "dz", "dW", "db", "da_prev")


@dataclass(frozen=True, slots=True)
class Event:
    """Carry the header shared by every event.

    Attributes
    ----------
    seq : int
        Position in the session log, from 0, strictly increasing by 1.
    step : int
        Optimizer step (0-based) the event belongs to.  Events emitted before
        the first update (session start, initial parameters) have step 0.
    epoch : int
        Epoch (0-based) the step belongs to.
    layer : int or None
        Layer index (0-based) or None when the event concerns no single layer.
    """

    seq: int
    step: int
    epoch: int
    layer: int | None

    @property
    def kind(self) -> str:
        """Return the snake_case name of the event class."""
        return KINDS[type(self)]

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict, with ``kind`` first; arrays stay arrays."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    """Emitted once, first: what is about to be trained and how.

    ``network``, ``config`` and ``dataset`` are the JSON-ready descriptions of
    the network spec, the training config and the data (without its arrays);
    ``n_train`` and ``n_test`` are sample counts; ``batch_size``,
    ``steps_per_epoch`` and ``total_steps`` describe the planned run.
    ``fused`` is True when the output layer's ``dz`` is computed as
    ``(y_hat - y) / n`` (sigmoid + binary or softmax + categorical cross-entropy).
    ``notices`` are plain-language warnings about the setup (targets outside the
    output's range, zero initialization).
    """

    network: dict[str, Any]
    config: dict[str, Any]
    dataset: dict[str, Any]
    n_train: int
    n_test: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    fused: bool
    notices: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParametersInitialized(Event):
    """Emitted once per layer after SessionStarted: the starting ``W`` and ``b``.

    ``initializer`` is the registry name used (or ``"given"`` for values set by
    hand).  ``W`` has shape (n_in, n_out), ``b`` shape (n_out,).
    """

    initializer: str
    W: Array
    b: Array


@dataclass(frozen=True, slots=True)
class BatchSampled(Event):
    """Emitted first in every step: which training rows form the batch.

    ``indices`` (batch_size,) index the training set; ``X`` (batch_size,
    n_features) and ``y`` (batch_size, n_outputs) are those rows.
    """

    indices: IntArray
    X: Array
    y: Array


@dataclass(frozen=True, slots=True)
class WeightedSumComputed(Event):
    """Emitted per layer in the forward pass: ``z = a_prev @ W + b``.

    ``a_prev`` (batch_size, n_in), ``W`` (n_in, n_out), ``b`` (n_out,),
    ``z`` (batch_size, n_out).
    """

    a_prev: Array
    W: Array
    b: Array
    z: Array


@dataclass(frozen=True, slots=True)
class ActivationComputed(Event):
    """Emitted per layer after its weighted sum: ``a = g(z)``.

    ``activation`` is the registry name of ``g``; ``z`` and ``a`` are
    (batch_size, n_out).
    """

    activation: str
    z: Array
    a: Array


@dataclass(frozen=True, slots=True)
class DropoutApplied(Event):
    """Emitted after an activation when the layer uses dropout (training only).

    Inverted dropout: ``a = a_before * mask / keep_prob``.  ``mask`` is a
    boolean (batch_size, n_out) array of the units kept.
    """

    keep_prob: float
    mask: np.ndarray
    a_before: Array
    a: Array


@dataclass(frozen=True, slots=True)
class LossComputed(Event):
    """Emitted once per step after the forward pass.

    ``y_hat`` and ``y`` are (batch_size, n_outputs); ``per_sample``
    (batch_size,) holds each sample's loss; ``data_loss`` is their mean;
    ``l2_penalty`` is ``l2 / 2 * sum of squared weights`` (0.0 without L2) and
    ``loss = data_loss + l2_penalty``.
    """

    loss_name: str
    y_hat: Array
    y: Array
    per_sample: Array
    data_loss: float
    l2_penalty: float
    loss: float


@dataclass(frozen=True, slots=True)
class GradientComputed(Event):
    """Emitted for each gradient of the backward pass, in the order computed.

    ``name`` is one of ``dy_hat`` (layer None), then per layer from the last
    to the first: ``da`` (only for a layer with dropout: the gradient before
    the dropout mask is applied), ``dz``, ``dW``, ``db``, and ``da_prev``
    (not for layer 0).  ``value`` has the shape of the variable; ``dW`` includes
    the L2 term ``l2 * W`` when L2 is on.
    """

    name: str
    value: Array


@dataclass(frozen=True, slots=True)
class ParametersUpdated(Event):
    """Emitted per layer and parameter (``W`` then ``b``) after the backward pass.

    ``before`` and ``after`` are the parameter values, ``grad`` the gradient
    used, ``lr`` the learning rate, ``t`` the optimizer's step counter (from 1)
    and ``state`` the optimizer's state after the update, by name (for example
    ``velocity``; ``m``, ``v``, ``m_hat``, ``v_hat`` for Adam; empty for GD).
    """

    name: str
    optimizer: str
    lr: float
    t: int
    before: Array
    grad: Array
    after: Array
    state: dict[str, Array] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepCompleted(Event):
    """Emitted last in every step: a summary for whole-run series.

    ``loss`` is the step's total loss and ``data_loss`` the part without the
    L2 penalty (as in ``LossComputed``); ``grad_norms`` holds the Frobenius norm
    of each layer's ``dW``; ``update_ratios`` each layer's
    ``norm(W_after - W_before) / norm(W_before)`` (inf when W_before is 0).
    """

    loss: float
    data_loss: float
    grad_norms: tuple[float, ...]
    update_ratios: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class EpochCompleted(Event):
    """Emitted after the last step of each epoch, with metrics on all data.

    ``train`` and ``test`` map metric names (``loss``, and ``accuracy`` for
    classification) to values computed with the parameters after the step,
    without dropout; ``test`` is empty when there is no test set.
    """

    train: dict[str, float]
    test: dict[str, float]


@dataclass(frozen=True, slots=True)
class TrainingDiverged(Event):
    """Emitted when a loss or gradient stops being finite; training then ends.

    ``quantity`` names what went non-finite (``z`` or ``a`` of a layer, the
    loss, a gradient name, or a parameter ``W`` or ``b`` after its update),
    ``index`` is the position of the first non-finite entry in it, ``value``
    that entry, and ``message`` says in plain words what happened and what to
    try.
    """

    quantity: str
    index: tuple[int, ...]
    value: float
    message: str


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    """Emitted last: why training ended (``completed``, ``stopped``, ``diverged``).

    ``steps`` is the number of completed optimizer steps.  Its header ``step``
    is the step that diverged, or else the last completed step.
    """

    reason: str
    steps: int


EVENT_TYPES: dict[str, type[Event]] = {
    "session_started": SessionStarted,
    "parameters_initialized": ParametersInitialized,
    "batch_sampled": BatchSampled,
    "weighted_sum_computed": WeightedSumComputed,
    "activation_computed": ActivationComputed,
    "dropout_applied": DropoutApplied,
    "loss_computed": LossComputed,
    "gradient_computed": GradientComputed,
    "parameters_updated": ParametersUpdated,
    "step_completed": StepCompleted,
    "epoch_completed": EpochCompleted,
    "training_diverged": TrainingDiverged,
    "session_ended": SessionEnded,
}
KINDS: dict[type, str] = {cls: kind for kind, cls in EVENT_TYPES.items()}
"""The kind (snake_case name) of each event class."""
