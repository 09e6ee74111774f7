"""Describe how a network is trained: loss, optimizer, schedule, seed."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError
from engine.losses import get_loss
from engine.optimizers import OPTIMIZERS, get_optimizer

__all__ = ["TRAIN_METRICS", "TrainingConfig"]

TRAIN_METRICS = ("batches", "evaluation")
"""How an epoch's training metrics are computed (see ``TrainingConfig``)."""


@dataclass(frozen=True)
class TrainingConfig:
    """Hold every training setting; validated on construction.

    Parameters
    ----------
    loss : str
        ``mse``, ``binary_cross_entropy`` or ``categorical_cross_entropy``.
    optimizer : str
        ``gd`` (full batch), ``sgd``, ``momentum``, ``nesterov``, ``rmsprop``
        or ``adam``.
    lr : float
        Learning rate.
    epochs : int
        Passes over the training set, at least 1.
    batch_size : int or None
        Samples per step; None uses the whole training set (full batch).
    seed : int
        Seeds initialization, shuffling and dropout.
    momentum : float
        Momentum and Nesterov coefficient.
    rho : float
        RMSprop decay of the mean square.
    beta1, beta2, eps : float
        Adam's moment decays and its (and RMSprop's) denominator guard.
    l2 : float
        Weight decay: adds ``l2 / 2 * sum W^2`` to the loss (biases excluded).
    shuffle : bool
        Draw a new order of the training set every epoch.
    train_metrics : str
        What an epoch's training metrics are.  ``"batches"`` (the default):
        the mean over the epoch's batches as they were trained, each sample
        counted once, with the parameters of its step and any dropout (what
        Keras reports); free, since every step computes them anyway.
        ``"evaluation"``: one more pass over the whole training set with the
        parameters after the epoch, without dropout (exact, but it costs a
        forward pass over all the data every epoch).
    start_step : int
        Where in the schedule of ``epochs`` epochs the run starts (0: at the
        beginning).  A fork continues its parent from there: the batches,
        epoch numbers and optimizer step count go on, its own steps count
        from 0, and it runs ``epochs * steps_per_epoch - start_step`` steps.
    optimizer_start : int
        The schedule step at which the optimizer's state started (0, or a
        fork's ``start_step`` when it switched optimizer): Adam's bias
        correction counts ``t`` from it.
    """

    loss: str = "mse"
    optimizer: str = "sgd"
    lr: float = 0.1
    epochs: int = 10
    batch_size: int | None = None
    seed: int = 0
    momentum: float = 0.9
    rho: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    l2: float = 0.0
    shuffle: bool = True
    train_metrics: str = "batches"
    start_step: int = 0
    optimizer_start: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss", get_loss(self.loss).name)
        if not isinstance(self.optimizer, str) or self.optimizer not in OPTIMIZERS:
            get_optimizer(self.optimizer, self.lr)
        if (
            isinstance(self.epochs, bool)
            or not isinstance(self.epochs, int)
            or self.epochs < 1
        ):
            msg = f"Epochs must be a whole number >= 1; got {self.epochs!r}."
            raise ConfigError(msg)
        if self.batch_size is not None and (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            msg = (
                f"batch_size must be a whole number >= 1, or None for the full "
                f"training set (--batch-size full on the command line); got "
                f"{self.batch_size!r}."
            )
            raise ConfigError(msg)
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or self.seed < 0
        ):
            msg = f"seed must be a whole number >= 0; got {self.seed!r}."
            raise ConfigError(msg)
        if not isinstance(self.shuffle, bool):
            msg = f"shuffle must be True or False; got {self.shuffle!r}."
            raise ConfigError(msg)
        _check_range("lr (learning rate)", self.lr, 0.0, math.inf, low_open=True)
        _check_range("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _check_range("rho", self.rho, 0.0, 1.0, high_open=True)
        _check_range("beta1", self.beta1, 0.0, 1.0, high_open=True)
        _check_range("beta2", self.beta2, 0.0, 1.0, high_open=True)
        _check_range("eps", self.eps, 0.0, math.inf, low_open=True)
        _check_range("l2", self.l2, 0.0, math.inf)
        for name in ("start_step", "optimizer_start"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                msg = f"{name} must be a whole number >= 0; got {value!r}."
                raise ConfigError(msg)
        if self.optimizer_start > self.start_step:
            msg = (
                f"optimizer_start ({self.optimizer_start}) cannot be after "
                f"start_step ({self.start_step}): the optimizer's state starts at "
                "or before the run does."
            )
            raise ConfigError(msg)
        if self.train_metrics not in TRAIN_METRICS:
            msg = (
                f"train_metrics must be one of {', '.join(TRAIN_METRICS)}; got "
                f"{self.train_metrics!r}."
            )
            raise ConfigError(msg)

    def optimizer_settings(self) -> dict[str, float]:
        """Return the settings the chosen optimizer reads, by name."""
        cls = OPTIMIZERS[self.optimizer]
        return {key: getattr(self, key) for key in cls.settings}

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        """Rebuild a config from :meth:`to_dict` output (validated again)."""
        if not isinstance(data, dict):
            msg = (
                f"Training settings must be a mapping of names to values; got {data!r}."
            )
            raise ConfigError(msg)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = ", ".join(sorted(map(repr, set(data) - names)))
        if unknown:
            msg = (
                f"Unknown training settings [{unknown}]; valid ones are "
                f"{sorted(names)}."
            )
            raise ConfigError(msg)
        return cls(**data)


def _check_range(
    what: str,
    value: Any,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low)
        ok = ok and (v < high if high_open else v <= high)
    if not ok:
        lo = "(" if low_open else "["
        if math.isinf(high):
            # Infinity itself is refused: the range is open at the top.
            bound = f"{'>' if low_open else '>='} {low}"
            msg = (
                f"{what} must be a number in {lo}{low}, inf): finite and {bound}; "
                f"got {value!r}."
            )
        else:
            hi = ")" if high_open else "]"
            msg = f"{what} must be a number in {lo}{low}, {high}{hi}; got {value!r}."
        raise ConfigError(msg)
