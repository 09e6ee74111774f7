"""Define the update rules that turn a gradient into a new parameter value.

Every rule is pure: it returns a new parameter array and a new state dict and
never changes its inputs, so an event may keep references to them.  The rules
follow PyTorch's formulation so the two can be compared number for number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from engine._types import Array
from engine.errors import ConfigError

__all__ = [
    "OPTIMIZERS",
    "GD",
    "SGD",
    "Adam",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "get_optimizer",
]

State = dict[str, Array]


class Optimizer(ABC):
    """Update one parameter from its gradient, keeping per-parameter state.

    ``settings`` names the hyper-parameters the rule reads from the training
    config (besides ``lr``); ``state_names`` the arrays it keeps per parameter.
    A rule turns an inf or NaN gradient entry into an inf or NaN parameter
    entry: the trainer checks the gradients only when a new parameter is not
    finite.
    """

    name: ClassVar[str]
    formula: ClassVar[str]
    settings: ClassVar[tuple[str, ...]] = ()
    state_names: ClassVar[tuple[str, ...]] = ()
    full_batch: ClassVar[bool] = False

    def __init__(self, lr: float, **settings: float) -> None:
        self.lr = lr
        for key in self.settings:
            setattr(self, key, float(settings[key]))

    def init_state(self, param: Array) -> State:
        """Return the state of a parameter before its first update."""
        return {key: np.zeros_like(param) for key in self.state_names}

    @abstractmethod
    def update(
        self, param: Array, grad: Array, state: State, t: int
    ) -> tuple[Array, State]:
        """Return the new parameter and state for step counter ``t`` (from 1)."""

    def describe(self) -> dict[str, Any]:
        """Return the rule's name, formula and settings for display."""
        out: dict[str, Any] = {
            "name": self.name,
            "formula": self.formula,
            "lr": self.lr,
        }
        out.update({key: getattr(self, key) for key in self.settings})
        return out


class GD(Optimizer):
    """Full-batch gradient descent: ``W = W - lr dW`` with dW over all samples."""

    name = "gd"
    formula = "W <- W - lr * dW"
    full_batch = True

    def update(
        self, param: Array, grad: Array, state: State, t: int
    ) -> tuple[Array, State]:
        return param - self.lr * grad, state


class SGD(GD):
    """Mini-batch stochastic gradient descent: the GD rule on one batch at a time."""

    name = "sgd"
    full_batch = False


class Momentum(Optimizer):
    """Heavy-ball momentum: ``velocity = momentum velocity + dW``, then a step."""

    name = "momentum"
    formula = "velocity <- momentum * velocity + dW;  W <- W - lr * velocity"
    settings = ("momentum",)
    state_names = ("velocity",)
    momentum: float

    def update(
        self, param: Array, grad: Array, state: State, t: int
    ) -> tuple[Array, State]:
        velocity = self.momentum * state["velocity"] + grad
        return param - self.lr * velocity, {"velocity": velocity}


class Nesterov(Momentum):
    """Nesterov momentum: step along ``dW + momentum velocity`` (the look-ahead)."""

    name = "nesterov"
    formula = (
        "velocity <- momentum * velocity + dW;  "
        "W <- W - lr * (dW + momentum * velocity)"
    )

    def update(
        self, param: Array, grad: Array, state: State, t: int
    ) -> tuple[Array, State]:
        velocity = self.momentum * state["velocity"] + grad
        return param - self.lr * (grad + self.momentum * velocity), {
            "velocity": velocity
        }


class RMSprop(Optimizer):
    """RMSprop: divide the step by a running root mean square of the gradient."""

    name = "rmsprop"
    formula = "s <- rho * s + (1 - rho) * dW^2;  W <- W - lr * dW / (sqrt(s) + eps)"
    settings = ("rho", "eps")
    state_names = ("s",)
    rho: float
    eps: float

    def update(
        self, param: Array, grad: Array, state: State, t: int
    ) -> tuple[Array, State]:
        s = self.rho * state["s"] + (1.0 - self.rho) * (grad * grad)
        return param - self.lr * grad / (np.sqrt(s) + self.eps), {"s": s}


class Adam(Optimizer):
    """Adam: momentum (``m``) and RMSprop (``v``) with bias correction."""

    name = "adam"
    formula = (
        "m <- beta1 * m + (1 - beta1) * dW;  v <- beta2 * v + (1 - beta2) * dW^2;  "
        "m_hat = m / (1 - beta1^t);  v_hat = v / (1 - beta2^t);  "
        "W <- W - lr * m_hat / (sqrt(v_hat) + eps)"
    )
    settings = ("beta1", "beta2", "eps")
    state_names = ("m", "v")
    beta1: float
    beta2: float
    eps: float

    def update(
        self, param: Array, grad: Array, state: State, t: int
    ) -> tuple[Array, State]:
        m = self.beta1 * state["m"] + (1.0 - self.beta1) * grad
        v = self.beta2 * state["v"] + (1.0 - self.beta2) * (grad * grad)
        m_hat = m / (1.0 - self.beta1**t)
        v_hat = v / (1.0 - self.beta2**t)
        new = param - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return new, {"m": m, "v": v, "m_hat": m_hat, "v_hat": v_hat}


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (GD, SGD, Momentum, Nesterov, RMSprop, Adam)
}


def get_optimizer(name: str, lr: float, **settings: float) -> Optimizer:
    """Return an optimizer by registry name, reading the settings it needs.

    Raises
    ------
    ConfigError
        If the name is not registered; the message lists the valid names.
    """
    if not isinstance(name, str) or name not in OPTIMIZERS:
        msg = f"Unknown optimizer {name!r}. Choose one of: {', '.join(OPTIMIZERS)}."
        raise ConfigError(msg)
    return OPTIMIZERS[name](lr, **settings)
