"""Initial values set by hand: recorded, replayed and verified from the file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine import LayerSpec, NetworkSpec, Trainer, TrainingConfig
from engine import events as ev
from engine.errors import ConfigError
from sessions import Session, SessionError, record, verify
from sessions.datasets import load_dataset

HAND_SET = {(0, "W", (1, 2)): 0.75, (0, "b", 3): -0.5, (1, "W", (4, 0)): 2.0}


def _setup() -> tuple[NetworkSpec, TrainingConfig, object]:
    data = load_dataset("moons", n_samples=40, seed=0)
    spec = NetworkSpec(2, (LayerSpec(5, "tanh"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(
        loss="binary_cross_entropy", optimizer="adam", lr=0.05, epochs=3, batch_size=8
    )
    return spec, config, data


@pytest.fixture(scope="module")
def hand_set_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec, config, data = _setup()
    path = tmp_path_factory.mktemp("initial") / "hand.session"
    assert record(spec, config, data, path, initial_values=HAND_SET) == "completed"
    return path


def _sql(path: Path, statement: str, args: tuple = ()) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute(statement, args)
    con.close()


def test_meta_lists_the_hand_set_values(hand_set_run: Path) -> None:
    with Session(hand_set_run) as s:
        assert s.meta["initial_values"] == [
            {"layer": 0, "param": "W", "index": [1, 2], "value": 0.75},
            {"layer": 0, "param": "b", "index": [3], "value": -0.5},
            {"layer": 1, "param": "W", "index": [4, 0], "value": 2.0},
        ]


def test_step_0_starts_from_the_hand_set_values(hand_set_run: Path) -> None:
    spec, config, data = _setup()
    drawn = Trainer(spec, config, data).params
    with Session(hand_set_run) as s:
        inits = [e for e in s.step_events(0) if isinstance(e, ev.ParametersInitialized)]
        initial = s.params_after(-1)
    assert inits[0].W[1, 2] == 0.75
    assert inits[0].b[3] == -0.5
    assert inits[1].W[4, 0] == 2.0
    assert initial[0]["W"][1, 2] == 0.75
    # Every other value is the one the seed draws.
    expected = drawn[0]["W"].copy()
    expected[1, 2] = 0.75
    np.testing.assert_array_equal(inits[0].W, expected)
    assert drawn[0]["W"][1, 2] != 0.75


def test_every_step_replays_and_the_file_verifies(hand_set_run: Path) -> None:
    with Session(hand_set_run) as s:
        for step in range(s.n_steps):
            s.step_events(step)  # raises if a step does not reproduce
    report = verify(hand_set_run)
    assert report.ok, report.summary()
    assert report.steps == 12


def test_a_tampered_hand_set_value_fails_verification(
    hand_set_run: Path, tmp_path: Path
) -> None:
    path = tmp_path / "tampered.session"
    path.write_bytes(hand_set_run.read_bytes())
    changed = [
        {"layer": 0, "param": "W", "index": [1, 2], "value": 0.8},
        {"layer": 0, "param": "b", "index": [3], "value": -0.5},
        {"layer": 1, "param": "W", "index": [4, 0], "value": 2.0},
    ]
    _sql(
        path,
        "UPDATE meta SET value = ? WHERE key = 'initial_values'",
        (json.dumps(changed),),
    )
    report = verify(path)
    assert not report.ok
    assert "keyframe of step 0" in report.first_difference
    with Session(path) as s, pytest.raises(SessionError, match="hand-set"):
        s.step_events(0)


def test_removing_the_hand_set_values_fails_verification(
    hand_set_run: Path, tmp_path: Path
) -> None:
    path = tmp_path / "dropped.session"
    path.write_bytes(hand_set_run.read_bytes())
    _sql(path, "DELETE FROM meta WHERE key = 'initial_values'")
    assert not verify(path).ok


def test_a_run_without_hand_set_values_has_no_meta_key(tmp_path: Path) -> None:
    spec, config, data = _setup()
    path = tmp_path / "plain.session"
    record(spec, config, data, path)
    with Session(path) as s:
        assert "initial_values" not in s.meta
        assert s.initial_values == []
    assert verify(path).ok


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({(2, "W", (0, 0)): 1.0}, "layers 0 to 1"),
        ({(0, "V", (0, 0)): 1.0}, "use 'W' or 'b'"),
        ({(0, "W", (2, 0)): 1.0}, "outside its shape"),
        ({(0, "b", (0, 0)): 1.0}, "outside its shape"),
        ({(0, "W", (0, 0)): float("nan")}, "finite"),
        ({(0, "W", (0, 0)): "x"}, "not a number"),
    ],
)
def test_bad_hand_set_values_are_refused_before_the_file_is_made(
    tmp_path: Path, values: dict, match: str
) -> None:
    spec, config, data = _setup()
    path = tmp_path / "bad.session"
    with pytest.raises(ConfigError, match=match):
        record(spec, config, data, path, initial_values=values)
    assert not path.exists()
