"""Tiny recorded sessions for the forward and loss tab tests.

Together they cover every activation (identity, relu, leaky_relu, tanh,
sigmoid, softmax), every loss (mse, binary and categorical cross-entropy,
the last two fused), dropout and L2.
"""

from __future__ import annotations

from pathlib import Path

from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import record
from sessions.datasets import load_dataset

RUNS = {
    "mse_dropout_l2": (
        "moons",
        {},
        [
            LayerSpec(5, "tanh", dropout=0.3),
            LayerSpec(4, "relu"),
            LayerSpec(1, "sigmoid"),
        ],
        {"loss": "mse", "l2": 0.01, "batch_size": 16},
    ),
    "bce": (
        "xor",
        {},
        [LayerSpec(3, "leaky_relu"), LayerSpec(1, "sigmoid")],
        {"loss": "binary_cross_entropy", "batch_size": 20},
    ),
    "cce": (
        "blobs",
        {},
        [LayerSpec(4, "linear"), LayerSpec(3, "softmax")],
        {"loss": "categorical_cross_entropy", "batch_size": 12},
    ),
}
"""Name -> (dataset, dataset options, layers, config options)."""


def record_run(name: str, folder: Path) -> Path:
    """Record the run ``name`` of :data:`RUNS` into ``folder``; return its path."""
    dataset, options, layers, config = RUNS[name]
    data = load_dataset(dataset, n_samples=80, seed=1, **options)
    spec = NetworkSpec(data.n_features, tuple(layers))
    cfg = TrainingConfig(optimizer="sgd", lr=0.3, epochs=2, seed=3, **config)
    path = folder / f"{name}.session"
    record(spec, cfg, data, path, title=name)
    return path
