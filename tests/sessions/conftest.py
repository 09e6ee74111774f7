"""Fixtures for the sessions tests: one tiny recorded run shared by a module."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import record
from sessions.datasets import load_dataset


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Record a tiny run (xor, 2-4-1, 3 epochs) and return its file."""
    path = tmp_path_factory.mktemp("lib") / "tiny.session"
    data = load_dataset("xor", n_samples=40, seed=0)
    spec = NetworkSpec(2, (LayerSpec(4, "tanh"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(
        loss="bce", optimizer="sgd", lr=0.1, epochs=3, batch_size=16, seed=0
    )
    record(spec, config, data, path, title="Tiny <xor>", description="first")
    return path
