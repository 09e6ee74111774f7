"""Define the losses L(y_hat, y), each with its per-sample value and its gradient."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from engine._rows import row_max, row_sum
from engine._types import Array
from engine.errors import ConfigError

__all__ = [
    "LOSSES",
    "BinaryCrossEntropy",
    "CategoricalCrossEntropy",
    "Loss",
    "MeanSquaredError",
    "clip_eps",
    "get_loss",
]


Shared = tuple[Array, Array, bool] | None
"""What a fused loss may reuse: the softmax's row maxima (batch_size, 1) and row
sums of ``exp(z - top)`` (batch_size,), and whether every row of ``y`` sums to 1."""


def clip_eps(dtype: np.dtype) -> float:
    """Return the clipping epsilon for probabilities of ``dtype``.

    1e-12 for float64; for float32 its machine epsilon (1.2e-7), because
    ``1 - 1e-12`` rounds to 1 in float32 and the clip would do nothing.
    """
    return max(1e-12, float(np.finfo(dtype).eps))


class Loss(ABC):
    """Measure how far predictions are from targets.

    ``forward`` returns one loss per sample; the training loss is their mean.
    ``backward`` returns ``dy_hat``, the gradient of that mean.  ``fused_with``
    names the output activation for which ``dz = (y_hat - y) / n`` holds, so
    the trainer may skip the activation's backward rule (and compute the loss
    from the logits ``z``, which never takes log of 0).
    """

    name: ClassVar[str]
    formula: ClassVar[str]
    fused_with: ClassVar[str | None] = None
    needs_probabilities: ClassVar[bool] = False

    @abstractmethod
    def forward(self, y_hat: Array, y: Array) -> Array:
        """Return the per-sample losses, shape (batch_size,)."""

    @abstractmethod
    def backward(self, y_hat: Array, y: Array) -> Array:
        """Return ``dy_hat`` of the mean loss, shape (batch_size, n_outputs)."""

    def forward_from_logits(self, z: Array, y: Array, shared: Shared = None) -> Array:
        """Return the per-sample losses computed from the output logits ``z``.

        ``shared`` only saves work (the result is the same without it): what
        the fused output activation's ``forward_parts`` gave besides ``a``,
        and whether every row of ``y`` sums to exactly 1 (one-hot targets).
        """
        msg = f"{self.name} has no fused form."
        raise NotImplementedError(msg)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """Squared error averaged over a sample's outputs: ``mean_k (y_hat - y)^2``."""

    name = "mse"
    formula = "L_i = mean_k (y_hat_ik - y_ik)^2"

    def forward(self, y_hat: Array, y: Array) -> Array:
        diff = y_hat - y
        return _row_mean(diff * diff)

    def backward(self, y_hat: Array, y: Array) -> Array:
        return (2.0 / y.size) * (y_hat - y)


class BinaryCrossEntropy(Loss):
    """Log loss for 0/1 targets: ``-mean_k [y log p + (1 - y) log(1 - p)]``."""

    name = "binary_cross_entropy"
    formula = "L_i = -mean_k [y log(y_hat) + (1 - y) log(1 - y_hat)]"
    fused_with = "sigmoid"
    needs_probabilities = True

    def forward(self, y_hat: Array, y: Array) -> Array:
        eps = clip_eps(y_hat.dtype)
        p = _clip(y_hat, eps, 1.0 - eps)
        return -_row_mean(y * np.log(p) + (1.0 - y) * np.log1p(-p))

    def backward(self, y_hat: Array, y: Array) -> Array:
        eps = clip_eps(y_hat.dtype)
        p = _clip(y_hat, eps, 1.0 - eps)
        return (p - y) / (p * (1.0 - p)) / y.size

    def forward_from_logits(self, z: Array, y: Array, shared: Shared = None) -> Array:
        # -[y log s(z) + (1 - y) log(1 - s(z))] = log(1 + exp(z)) - y z, stably.
        return _row_mean(np.logaddexp(0.0, z) - y * z)


class CategoricalCrossEntropy(Loss):
    """Log loss for one-hot targets: ``-sum_k y_k log p_k``."""

    name = "categorical_cross_entropy"
    formula = "L_i = -sum_k y_ik log(y_hat_ik)"
    fused_with = "softmax"
    needs_probabilities = True

    def forward(self, y_hat: Array, y: Array) -> Array:
        p = _clip(y_hat, clip_eps(y_hat.dtype), 1.0)
        return -row_sum(y * np.log(p))

    def backward(self, y_hat: Array, y: Array) -> Array:
        p = _clip(y_hat, clip_eps(y_hat.dtype), 1.0)
        return -y / p / y.shape[0]

    def forward_from_logits(self, z: Array, y: Array, shared: Shared = None) -> Array:
        # -sum_k y_k log softmax(z)_k = logsumexp(z) sum_k y_k - sum_k y_k z_k.
        # The row maxima and sums of exp(z - top) are the softmax's own
        # (Softmax.forward_parts), the same expressions giving the same bits.
        if shared is None:
            top = row_max(z)
            s = row_sum(np.exp(z - top))
            rows_sum_to_one = False
        else:
            top, s, rows_sum_to_one = shared
        lse = np.log(s) + top[:, 0]
        # Times a sum of exactly 1 is the same number: skip it.
        if not rows_sum_to_one:
            lse = lse * row_sum(y)
        return lse - row_sum(y * z)


def _clip(x: Array, low: float, high: float) -> Array:
    """Return ``np.clip(x, low, high)``: the same values, NaN kept, less overhead."""
    return np.minimum(np.maximum(x, low), high)


def _row_mean(x: Array) -> Array:
    """Return ``x.mean(axis=1)`` bit for bit: the same sum, divided in place."""
    out = row_sum(x)
    out /= x.shape[1]
    return out


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (MeanSquaredError, BinaryCrossEntropy, CategoricalCrossEntropy)
}
_ALIASES = {"bce": "binary_cross_entropy", "cce": "categorical_cross_entropy"}


def get_loss(name: str) -> Loss:
    """Return a fresh loss for its registry name (``bce`` and ``cce`` work too).

    Raises
    ------
    ConfigError
        If the name is not registered; the message lists the valid names.
    """
    # A name that is not text (a list, a dict) is unknown, not unhashable.
    key = _ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in LOSSES:
        msg = f"Unknown loss {name!r}. Choose one of: {', '.join(LOSSES)}."
        raise ConfigError(msg)
    return LOSSES[key]()
