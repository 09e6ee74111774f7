"""Define how a layer's starting weights are drawn."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from engine._types import Array
from engine.errors import ConfigError

__all__ = [
    "INITIALIZERS",
    "HeNormal",
    "HeUniform",
    "Initializer",
    "Normal",
    "Uniform",
    "XavierNormal",
    "XavierUniform",
    "Zeros",
    "default_initializer",
    "get_initializer",
]


class Initializer(ABC):
    """Draw a weight matrix ``W`` of shape (n_in, n_out); biases start at 0.

    ``scale`` is the initializer's own size knob where it has one (the bound
    of ``uniform``, the standard deviation of ``normal``); None uses the default.
    """

    name: ClassVar[str]
    formula: ClassVar[str]
    default_scale: ClassVar[float | None] = None

    def __init__(self, scale: float | None = None) -> None:
        if scale is not None and self.default_scale is None:
            msg = f"The {self.name} initializer takes no scale; got {scale!r}."
            raise ConfigError(msg)
        if scale is not None and not (np.isfinite(scale) and scale > 0):
            msg = f"The {self.name} scale must be a positive number; got {scale!r}."
            raise ConfigError(msg)
        self.scale = self.default_scale if scale is None else float(scale)

    @abstractmethod
    def sample(self, n_in: int, n_out: int, rng: np.random.Generator) -> Array:
        """Return a new (n_in, n_out) weight matrix drawn with ``rng``."""


class Zeros(Initializer):
    """Start every weight at 0: every unit of a layer then learns the same thing."""

    name = "zeros"
    formula = "W = 0"

    def sample(self, n_in: int, n_out: int, rng: np.random.Generator) -> Array:
        return np.zeros((n_in, n_out))


class Uniform(Initializer):
    """Draw from U(-scale, scale), 0.05 by default."""

    name = "uniform"
    formula = "W ~ U(-s, s)"
    default_scale = 0.05

    def sample(self, n_in: int, n_out: int, rng: np.random.Generator) -> Array:
        assert self.scale is not None
        return rng.uniform(-self.scale, self.scale, size=(n_in, n_out))


class Normal(Initializer):
    """Draw from N(0, scale^2), 0.01 by default (small: deep nets then vanish)."""

    name = "normal"
    formula = "W ~ N(0, s^2)"
    default_scale = 0.01

    def sample(self, n_in: int, n_out: int, rng: np.random.Generator) -> Array:
        assert self.scale is not None
        return rng.normal(0.0, self.scale, size=(n_in, n_out))


class XavierUniform(Initializer):
    """Glorot uniform: U(-r, r), ``r = sqrt(6 / (n_in + n_out))``; for sigmoid, tanh."""

    name = "xavier_uniform"
    formula = "W ~ U(-r, r), r = sqrt(6 / (n_in + n_out))"

    def sample(self, n_in: int, n_out: int, rng: np.random.Generator) -> Array:
        r = np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-r, r, size=(n_in, n_out))


class XavierNormal(Initializer):
    """Glorot normal: N(0, 2 / (n_in + n_out))."""

    name = "xavier_normal"
    formula = "W ~ N(0, 2 / (n_in + n_out))"

    def sample(self, n_in: int, n_out: int, rng: np.random.Generator) -> Array:
        return rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), size=(n_in, n_out))


class HeUniform(Initializer):
    """He uniform: U(-r, r) with ``r = sqrt(6 / n_in)``; for ReLU and leaky ReLU."""

    name = "he_uniform"
    formula = "W ~ U(-r, r), r = sqrt(6 / n_in)"

    def sample(self, n_in: int, n_out: int, rng: np.random.Generator) -> Array:
        r = np.sqrt(6.0 / n_in)
        return rng.uniform(-r, r, size=(n_in, n_out))


class HeNormal(Initializer):
    """He normal: N(0, 2 / n_in)."""

    name = "he_normal"
    formula = "W ~ N(0, 2 / n_in)"

    def sample(self, n_in: int, n_out: int, rng: np.random.Generator) -> Array:
        return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))


INITIALIZERS: dict[str, type[Initializer]] = {
    cls.name: cls
    for cls in (
        Zeros,
        Uniform,
        Normal,
        XavierUniform,
        XavierNormal,
        HeUniform,
        HeNormal,
    )
}
_ALIASES = {"xavier": "xavier_uniform", "glorot": "xavier_uniform", "he": "he_normal"}


def default_initializer(activation: str) -> str:
    """Return the initializer that suits ``activation``: He for ReLUs, else Xavier."""
    return "he_normal" if activation in ("relu", "leaky_relu") else "xavier_uniform"


def get_initializer(name: str, scale: float | None = None) -> Initializer:
    """Return an initializer by registry name (``xavier`` and ``he`` work too).

    Raises
    ------
    ConfigError
        If the name is not registered; the message lists the valid names.
    """
    # A name that is not text (a list, a dict) is unknown, not unhashable.
    key = _ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in INITIALIZERS:
        msg = f"Unknown initializer {name!r}. Choose one of: {', '.join(INITIALIZERS)}."
        raise ConfigError(msg)
    return INITIALIZERS[key](scale)
