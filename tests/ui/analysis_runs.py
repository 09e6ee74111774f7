"""Tiny recorded sessions for the results and analysis tab tests.

``moons`` is 2-D binary classification (relu then sigmoid), ``sine`` 1-D
regression (tanh then identity), ``odd_names`` binary data whose class and
feature names are HTML, with no test part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.config import TrainingConfig
from engine.data import Dataset
from engine.network import LayerSpec, NetworkSpec
from sessions import record
from sessions.datasets import load_dataset

HOSTILE = "<b>bold</b> & $$x$$"


def record_moons(folder: Path) -> Path:
    """Record 6 epochs of a 2-8-1 ReLU network on 80 moons points (12 steps)."""
    data = load_dataset("moons", n_samples=80, seed=1)
    spec = NetworkSpec(2, (LayerSpec(8, "relu"), LayerSpec(1, "sigmoid")))
    cfg = TrainingConfig(
        loss="binary_cross_entropy",
        optimizer="adam",
        lr=0.05,
        epochs=6,
        batch_size=32,
        seed=0,
    )
    path = folder / "moons.session"
    record(spec, cfg, data, path, title="moons")
    return path


def record_sine(folder: Path) -> Path:
    """Record 8 full-batch epochs of a 1-6-1 tanh network on the sine task."""
    data = load_dataset("sine", n_samples=60, seed=2)
    spec = NetworkSpec(1, (LayerSpec(6, "tanh"), LayerSpec(1, "linear")))
    cfg = TrainingConfig(loss="mse", optimizer="sgd", lr=0.1, epochs=8, seed=0)
    path = folder / "sine.session"
    record(spec, cfg, data, path, title="sine")
    return path


def record_odd_names(folder: Path) -> Path:
    """Record 3 steps on data with HTML-like names and an empty test part
    (batches of 10: see the lead's note on full-batch replays)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = (X[:, :1] > 0).astype(float)
    data = Dataset(
        "odd",
        "binary",
        X,
        y,
        np.zeros((0, 2)),
        np.zeros((0, 1)),
        feature_names=(HOSTILE, "<i>f2</i>"),
        class_names=(HOSTILE, "<script>alert(1)</script>"),
    )
    spec = NetworkSpec(2, (LayerSpec(3, "sigmoid"), LayerSpec(1, "sigmoid")))
    cfg = TrainingConfig(
        loss="binary_cross_entropy", lr=0.5, epochs=1, batch_size=10, seed=0
    )
    path = folder / "odd.session"
    record(spec, cfg, data, path, title="odd")
    return path


def record_unhealthy(folder: Path) -> Path:
    """Record 4 steps of a 2-3-3-1 net with one dead ReLU unit and saturated tanh.

    Hand-set starting values: unit 2 of layer 1 has bias -100 (never active,
    so it never gets a gradient and stays dead); layer 2's weights are huge,
    so its tanh units sit at +-1 for almost every sample.
    """
    data = load_dataset("moons", n_samples=40, seed=3)
    W1 = np.array([[1.0, 0.5, -1.0], [0.5, -0.5, 1.0]])
    b1 = np.array([0.5, -100.0, 0.5])
    W2 = np.array([[60.0, -60.0, 60.0], [60.0, 60.0, -60.0], [-60.0, 60.0, 60.0]])
    b2 = np.array([30.0, -30.0, 30.0])
    W3 = np.array([[0.3], [-0.2], [0.1]])
    b3 = np.zeros(1)
    initial = [{"W": W1, "b": b1}, {"W": W2, "b": b2}, {"W": W3, "b": b3}]
    layers = (LayerSpec(3, "relu"), LayerSpec(3, "tanh"), LayerSpec(1, "sigmoid"))
    spec = NetworkSpec(2, layers, initial)
    cfg = TrainingConfig(
        loss="binary_cross_entropy", lr=0.1, epochs=1, batch_size=8, seed=0
    )
    path = folder / "unhealthy.session"
    record(spec, cfg, data, path, title="unhealthy")
    return path


def record_deep_sigmoid(folder: Path) -> Path:
    """Record 6 steps of an 8-layer sigmoid net: the first layers' gradients vanish."""
    data = load_dataset("moons", n_samples=40, seed=4)
    layers = tuple(LayerSpec(4, "sigmoid", "normal", 0.5) for _ in range(8))
    spec = NetworkSpec(2, (*layers, LayerSpec(1, "sigmoid")))
    cfg = TrainingConfig(
        loss="binary_cross_entropy", lr=0.1, epochs=2, batch_size=12, seed=0
    )
    path = folder / "deep.session"
    record(spec, cfg, data, path, title="deep")
    return path


def record_long(folder: Path, epochs: int = 1000) -> Path:
    """Record ``epochs`` epochs of 10 steps each on 50 moons points (a long run)."""
    data = load_dataset("moons", n_samples=50, seed=1)
    spec = NetworkSpec(2, (LayerSpec(4, "relu"), LayerSpec(1, "sigmoid")))
    cfg = TrainingConfig(
        loss="binary_cross_entropy",
        optimizer="sgd",
        lr=0.05,
        epochs=epochs,
        batch_size=4,
        seed=0,
    )
    path = folder / "long.session"
    record(spec, cfg, data, path, title="long")
    return path


def record_diverging(folder: Path) -> Path:
    """Record a moons run with a learning rate of 1e6, which diverges."""
    data = load_dataset("moons", n_samples=60, seed=1)
    spec = NetworkSpec(2, (LayerSpec(8, "relu"), LayerSpec(1, "sigmoid")))
    cfg = TrainingConfig(
        loss="binary_cross_entropy", lr=1e6, epochs=30, batch_size=10, seed=0
    )
    path = folder / "diverging.session"
    assert record(spec, cfg, data, path, title="diverging") == "diverged"
    return path
