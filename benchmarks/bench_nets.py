"""Define the three benchmark networks and run each one as every timed variant.

Each variant function trains one whole run and returns ``(seconds, steps)``; the
clock covers everything a user waits for (building the trainer or model, every
step, and for a recorded run the final commit, checkpoint and close).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import Dataset, LayerSpec, NetworkSpec, Trainer, TrainingConfig
from engine import events as ev
from sessions import record
from sessions.datasets import load_dataset

__all__ = [
    "ENGINE_VARIANTS",
    "TORCH_VARIANTS",
    "VARIANTS",
    "Net",
    "make_nets",
    "net_a",
    "run_all_events",
    "run_recorded",
    "run_unrecorded",
    "torch_job",
]

LR = 0.1
SEED = 0


@dataclass(frozen=True)
class Net:
    """One benchmark network with its data and training settings."""

    key: str
    label: str
    spec: NetworkSpec
    config: TrainingConfig
    data: Dataset

    @property
    def steps(self) -> int:
        """Return the number of optimizer steps of one run."""
        return Trainer(self.spec, self.config, self.data).total_steps


def _moons() -> Dataset:
    # 1000 rows, 20 % test: 800 training rows, 25 batches of 32 per epoch.
    return load_dataset("moons", n_samples=1000, seed=SEED)


def _epochs_for(data: Dataset, batch_size: int | None, steps: int) -> int:
    per_epoch = math.ceil(data.n_train / (batch_size or data.n_train))
    return max(1, math.ceil(steps / per_epoch))


def net_a(steps: int) -> Net:
    """Return net (a) for about ``steps`` steps (whole epochs of 25 steps).

    2-8-8-1 tanh/tanh/sigmoid, binary cross-entropy, moons, batch 32, SGD.
    """
    moons = _moons()
    spec = NetworkSpec(
        2, (LayerSpec(8, "tanh"), LayerSpec(8, "tanh"), LayerSpec(1, "sigmoid"))
    )
    config = TrainingConfig(
        loss="binary_cross_entropy",
        optimizer="sgd",
        lr=LR,
        batch_size=32,
        epochs=_epochs_for(moons, 32, steps),
        seed=SEED,
    )
    return Net("a", "2-8-8-1 moons B32 SGD", spec, config, moons)


def make_nets(steps: int) -> list[Net]:
    """Return nets (a), (b), (c), each with about ``steps`` optimizer steps."""
    iris = load_dataset("iris", test_fraction=0.0, seed=SEED)
    digits = load_dataset("digits", seed=SEED)
    b_spec = NetworkSpec(4, (LayerSpec(16, "relu"), LayerSpec(3, "softmax")))
    c_spec = NetworkSpec(64, (LayerSpec(32, "relu"), LayerSpec(10, "softmax")))
    cce = "categorical_cross_entropy"
    return [
        net_a(steps),
        Net(
            "b",
            "4-16-3 iris B150 GD",
            b_spec,
            TrainingConfig(
                loss=cce,
                optimizer="gd",
                lr=LR,
                batch_size=None,
                epochs=_epochs_for(iris, None, steps),
                seed=SEED,
            ),
            iris,
        ),
        Net(
            "c",
            "64-32-10 digits B64 SGD",
            c_spec,
            TrainingConfig(
                loss=cce,
                optimizer="sgd",
                lr=LR,
                batch_size=64,
                epochs=_epochs_for(digits, 64, steps),
                seed=SEED,
            ),
            digits,
        ),
    ]


# -- engine variants ---------------------------------------------------------


def run_recorded(
    net: Net, path: Path, blas_threads: int | None = None
) -> tuple[float, int]:
    """Train with full recording into a new session file at ``path``.

    ``blas_threads`` limits NumPy's BLAS pool for this run (None: as it is).
    """
    # Imported here, not at the top: the tests import this module (through
    # bench_app) with only the test extra installed, which has no threadpoolctl.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads, user_api="blas"):
        t0 = time.perf_counter()
        reason = record(net.spec, net.config, net.data, path)
        seconds = time.perf_counter() - t0
    assert reason == "completed", reason
    return seconds, net.steps


def run_unrecorded(net: Net) -> tuple[float, int]:
    """Train silently: ``Trainer(..., sink=None).run()``."""
    t0 = time.perf_counter()
    trainer = Trainer(net.spec, net.config, net.data, sink=None)
    trainer.run()
    seconds = time.perf_counter() - t0
    return seconds, trainer.total_steps


def run_all_events(net: Net) -> tuple[float, int, list[ev.Event]]:
    """Train with ``sink=list.append``: every event is built and kept in memory."""
    log: list[ev.Event] = []
    t0 = time.perf_counter()
    trainer = Trainer(net.spec, net.config, net.data, sink=log.append)
    trainer.run()
    seconds = time.perf_counter() - t0
    return seconds, trainer.total_steps, log


# -- what PyTorch needs to repeat a run ---------------------------------------


class _BatchesAndLosses:
    """A sink that asks the trainer only for each step's batch and summary."""

    wants = frozenset({"batch_sampled", "step_completed"})

    def __init__(self) -> None:
        self.indices: list[np.ndarray] = []
        self.losses: list[float] = []

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.BatchSampled):
            self.indices.append(np.asarray(event.indices))
        elif isinstance(event, ev.StepCompleted):
            self.losses.append(event.loss)


def torch_job(net: Net) -> dict[str, Any]:
    """Return what PyTorch needs to train exactly as the engine does (picklable).

    The engine's initial weights, the training data, every step's batch rows
    (None for a full batch) and the engine's loss at every step.
    """
    trainer = Trainer(net.spec, net.config, net.data)
    initial = [{k: v.copy() for k, v in p.items()} for p in trainer.state().params]
    sink = _BatchesAndLosses()
    trainer.sink = sink
    trainer.run()
    full = net.config.batch_size is None
    return {
        "key": net.key,
        "loss": net.config.loss,
        "lr": net.config.lr,
        "activations": [layer.activation for layer in net.spec.layers],
        "initial": initial,
        "X": net.data.X_train,
        "y": net.data.y_train,
        "batches": [None if full else i for i in sink.indices],
        "engine_losses": sink.losses,
    }


# -- the variants, by name -----------------------------------------------------

ENGINE_VARIANTS = (
    "engine_recorded",
    "engine_unrecorded",
    "engine_all_events",
    "engine_recorded_blas1",
)
TORCH_VARIANTS = ("torch_1_thread", "torch_default_threads")
VARIANTS = ENGINE_VARIANTS + TORCH_VARIANTS
