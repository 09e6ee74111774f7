"""Define the activation functions g, each with its forward and backward rule."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from engine._rows import row_max, row_sum
from engine._types import Array
from engine.errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Identity",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "get_activation",
]


class Activation(ABC):
    """Turn weighted sums into activations, ``a = g(z)``, and back-propagate.

    Subclasses set ``name`` (the registry key), ``formula`` (how the UI writes
    g) and ``output_range`` (the open or closed interval of values ``a`` can
    take, used to check that an output layer fits its loss).
    """

    name: ClassVar[str]
    formula: ClassVar[str]
    output_range: ClassVar[tuple[float, float]]

    @abstractmethod
    def forward(self, z: Array) -> Array:
        """Return ``a = g(z)`` for ``z`` of shape (batch_size, n_out)."""

    @abstractmethod
    def backward(self, z: Array, a: Array, da: Array) -> Array:
        """Return ``dz`` given ``da`` (all of shape (batch_size, n_out)).

        ``z`` and ``a`` are the forward values, so a rule can use whichever is
        cheaper (``sigmoid'(z) = a (1 - a)``).
        """

    def forward_parts(self, z: Array) -> tuple[Array, tuple[Array, Array] | None]:
        """Return ``g(z)`` and intermediates a fused loss can reuse (or None)."""
        return self.forward(z), None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(Activation):
    """Pass the weighted sum through: ``a = z`` (also called linear)."""

    name = "identity"
    formula = "a = z"
    output_range = (-np.inf, np.inf)

    def forward(self, z: Array) -> Array:
        return z

    def backward(self, z: Array, a: Array, da: Array) -> Array:
        return da


class Sigmoid(Activation):
    """Squash to (0, 1): ``a = 1 / (1 + exp(-z))``."""

    name = "sigmoid"
    formula = "a = 1 / (1 + exp(-z))"
    output_range = (0.0, 1.0)

    def forward(self, z: Array) -> Array:
        # NOTE: exp(-log(1 + exp(-z))) never overflows, unlike 1 / (1 + exp(-z)).
        return np.exp(-np.logaddexp(0.0, -z))

    def backward(self, z: Array, a: Array, da: Array) -> Array:
        return da * a * (1.0 - a)


class Tanh(Activation):
    """Squash to (-1, 1): ``a = tanh(z)``."""

    name = "tanh"
    formula = "a = tanh(z)"
    output_range = (-1.0, 1.0)

    def forward(self, z: Array) -> Array:
        return np.tanh(z)

    def backward(self, z: Array, a: Array, da: Array) -> Array:
        return da * (1.0 - a * a)


class ReLU(Activation):
    """Keep positive sums, zero the rest: ``a = max(z, 0)``."""

    name = "relu"
    formula = "a = max(z, 0)"
    output_range = (0.0, np.inf)

    def forward(self, z: Array) -> Array:
        return np.maximum(z, 0.0)

    def backward(self, z: Array, a: Array, da: Array) -> Array:
        # The derivative at exactly 0 is taken as 0, as PyTorch does.
        return da * (z > 0.0)


class LeakyReLU(Activation):
    """Keep positive sums, scale the rest by ``alpha``: ``a = max(z, alpha z)``."""

    name = "leaky_relu"
    formula = "a = z if z > 0 else alpha * z"
    output_range = (-np.inf, np.inf)

    def __init__(self, alpha: float = 0.01) -> None:
        if not 0.0 <= alpha < 1.0:
            msg = f"leaky_relu alpha must be in [0, 1); got {alpha!r}."
            raise ConfigError(msg)
        self.alpha = float(alpha)

    def forward(self, z: Array) -> Array:
        return np.where(z > 0.0, z, self.alpha * z)

    def backward(self, z: Array, a: Array, da: Array) -> Array:
        return np.where(z > 0.0, da, self.alpha * da)

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha!r})"


class Softmax(Activation):
    """Turn a row of sums into probabilities: ``a_k = exp(z_k) / sum_j exp(z_j)``."""

    name = "softmax"
    formula = "a_k = exp(z_k) / sum_j exp(z_j)"
    output_range = (0.0, 1.0)

    def forward(self, z: Array) -> Array:
        return self.forward_parts(z)[0]

    def forward_parts(self, z: Array) -> tuple[Array, tuple[Array, Array]]:
        """Return ``g(z)`` and ``(top, s)``: the row maxima (batch_size, 1) and
        the row sums of ``exp(z - top)`` (batch_size,).

        The cross-entropy from logits needs the same two, computed by the same
        expressions (see ``CategoricalCrossEntropy.forward_from_logits``).
        """
        # NOTE: subtracting the row maximum leaves the result unchanged and keeps
        # exp from overflowing (logits of +-1000 give exact 0s and 1s, no NaN).
        top = row_max(z)
        e = np.exp(z - top)
        s = row_sum(e)
        return e / s[:, None], (top, s)

    def backward(self, z: Array, a: Array, da: Array) -> Array:
        # The full Jacobian J = diag(a) - a a^T applied to da, row by row:
        # dz_k = a_k (da_k - sum_j da_j a_j).
        return a * (da - row_sum(da * a)[:, None])


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax)
}
_ALIASES = {"linear": "identity"}


def get_activation(name: str) -> Activation:
    """Return a fresh activation for its registry name (``"linear"`` = identity).

    Raises
    ------
    ConfigError
        If the name is not registered; the message lists the valid names.
    """
    # A name that is not text (a list, a dict) is unknown, not unhashable.
    key = _ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in ACTIVATIONS:
        msg = (
            f"Unknown activation {name!r}. Choose one of: "
            f"{', '.join(ACTIVATIONS)} (or 'linear' for identity)."
        )
        raise ConfigError(msg)
    return ACTIVATIONS[key]()
