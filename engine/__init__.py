"""The math of glassnet: dense networks in NumPy, every computation an event.

The engine imports only NumPy and the standard library, does no I/O and reads no
clock: training hands events to a sink the caller gives it.
"""

from __future__ import annotations

from engine import events
from engine.activations import ACTIVATIONS, Activation, get_activation
from engine.config import TrainingConfig
from engine.data import TASKS, Dataset
from engine.errors import ConfigError, GlassnetError, TrainingWarning
from engine.events import EVENT_TYPES, Event
from engine.gradcheck import GradCheckReport, gradient_check, relative_difference
from engine.initializers import INITIALIZERS, Initializer, get_initializer
from engine.losses import LOSSES, Loss, get_loss
from engine.network import LayerSpec, NetworkSpec, Params, backward, forward
from engine.optimizers import OPTIMIZERS, Optimizer, get_optimizer
from engine.trainer import Sink, Trainer, TrainerState

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "EVENT_TYPES",
    "INITIALIZERS",
    "LOSSES",
    "OPTIMIZERS",
    "TASKS",
    "Activation",
    "ConfigError",
    "Dataset",
    "Event",
    "GradCheckReport",
    "GlassnetError",
    "Initializer",
    "LayerSpec",
    "Loss",
    "NetworkSpec",
    "Optimizer",
    "Params",
    "Sink",
    "Trainer",
    "TrainerState",
    "TrainingConfig",
    "TrainingWarning",
    "backward",
    "events",
    "forward",
    "get_activation",
    "get_initializer",
    "get_loss",
    "get_optimizer",
    "gradient_check",
    "relative_difference",
]
