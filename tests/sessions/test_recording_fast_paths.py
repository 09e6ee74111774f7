"""The recorder's fast encoders write exactly the bytes of the general ones."""

from __future__ import annotations

import dataclasses
import math
import random
import struct

import numpy as np
import pytest

from engine import Dataset, LayerSpec, NetworkSpec, Trainer, TrainingConfig
from engine.optimizers import OPTIMIZERS
from sessions.codec import encode_bundle, to_json
from sessions.recorder import _metrics_json
from sessions.state import KeyframeEncoder, encode_state, encode_summary


def _random_float(rng: random.Random) -> float:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.random()
    if kind == 1:
        return rng.uniform(-1e300, 1e300)
    if kind == 2:
        return struct.unpack("<d", rng.randbytes(8))[0]  # any bits, NaN included
    if kind == 3:
        return rng.choice([0.0, -0.0, 1.0, 5e-324, 1e16, 1e-7, math.inf, -math.inf])
    if kind == 4:
        return rng.randrange(3) / 3
    return float(rng.randrange(-10, 10))


def test_metric_json_is_the_text_to_json_writes() -> None:
    rng = random.Random(0)
    for _ in range(20_000):
        metrics = {
            rng.choice(["loss", "accuracy", "x_1", "mse"]): _random_float(rng)
            for _ in range(rng.randrange(4))
        }
        assert _metrics_json(metrics) == to_json(metrics)
        as_numpy = {k: np.float64(v) for k, v in metrics.items()}
        assert _metrics_json(as_numpy) == to_json(as_numpy)


@pytest.mark.parametrize(
    "metrics",
    [
        {},
        {"loss": math.nan},
        {"loss": 1, "accuracy": True},
        {'we"ird': 0.5},
        {"ünïcode": 0.25},
        {"": 0.5},
        {"loss": np.float64(0.1)},
        {"loss": np.float64(np.nan)},
        {"accuracy": np.float32(0.1)},
        {"n": np.int64(3)},
        {"a\\b": 1.0},
    ],
)
def test_metric_json_of_unusual_dicts_is_the_text_to_json_writes(
    metrics: dict[str, float],
) -> None:
    assert _metrics_json(metrics) == to_json(metrics)


def test_a_summary_is_packed_as_little_endian_float64s() -> None:
    rng = random.Random(1)
    for n_layers in (1, 2, 5):
        values = [_random_float(rng) for _ in range(2 + 2 * n_layers)]
        blob = encode_summary(
            values[0],
            values[1],
            tuple(values[2 : 2 + n_layers]),
            tuple(values[2 + n_layers :]),
        )
        assert blob == struct.pack(f"<{len(values)}d", *values)


def test_a_bundle_holds_the_little_endian_bytes_of_any_array() -> None:
    rng = np.random.default_rng(2)
    W = rng.standard_normal((6, 4))
    arrays = {
        "W": W,
        "Wt": W.T,  # not C-contiguous
        "big": W.astype(">f8"),  # big-endian input
        "i": np.arange(5, dtype=np.int32),
        "mask": W > 0,
    }
    blob = encode_bundle(arrays, {"step": 3})
    (n,) = struct.unpack_from("<I", blob)
    data = blob[4 + n :]
    expected = b"".join(
        [
            W.astype("<f8").tobytes(),
            np.ascontiguousarray(W.T).astype("<f8").tobytes(),
            W.astype("<f8").tobytes(),
            np.arange(5, dtype="<i8").tobytes(),
            (W > 0).tobytes(),
        ]
    )
    assert data == expected


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_keyframes_of_a_run_are_the_bytes_encode_state_writes(optimizer: str) -> None:
    spec = NetworkSpec(3, (LayerSpec(4, "tanh", dropout=0.2), LayerSpec(2, "sigmoid")))
    g = np.random.default_rng(0)
    X = g.normal(size=(9, 3))
    y = (X[:, :2] > 0).astype(float)
    data = Dataset("d", "regression", X, y, X[:0], y[:0], ("a", "b", "c"))
    config = TrainingConfig(loss="mse", optimizer=optimizer, batch_size=4, epochs=4)
    trainer = Trainer(spec, config, data)
    names = OPTIMIZERS[optimizer].state_names
    encoder = KeyframeEncoder(names)
    rng = random.Random(1)
    while not trainer.done:
        state = trainer.state()
        assert encoder.encode(state) == encode_state(state, names)
        odd = dataclasses.replace(
            state, epoch_sums=(_random_float(rng), rng.randrange(10**12))
        )
        assert encoder.encode(odd) == encode_state(odd, names)
        trainer.train_step()
    # A state of other shapes (another network) falls back to the general encoder.
    other = Trainer(NetworkSpec(3, (LayerSpec(2, "sigmoid"),)), config, data).state()
    assert encoder.encode(other) == encode_state(other, names)
