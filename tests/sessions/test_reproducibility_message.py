"""A step that does not reproduce: blame the file or the machine, whichever differs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import Session, SessionReproducibilityError, record
from sessions.datasets import load_dataset


@pytest.fixture
def tampered(tmp_path: Path) -> Path:
    """Return a small session whose learning rate was changed after recording."""
    path = tmp_path / "tampered.session"
    data = load_dataset("moons", n_samples=20, seed=0)
    spec = NetworkSpec(2, (LayerSpec(3, "tanh"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(
        loss="bce", optimizer="sgd", lr=0.1, epochs=2, batch_size=10
    )
    assert record(spec, config, data, path) == "completed"
    _edit_meta(path, "config", lambda c: {**c, "lr": 0.2})
    return path


def _edit_meta(path: Path, key: str, change: Callable[[Any], Any]) -> None:
    con = sqlite3.connect(path)
    with con:
        (text,) = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        value = json.dumps(change(json.loads(text)))
        con.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
    con.close()


def test_same_versions_say_the_file_was_changed_not_the_machine(
    tampered: Path,
) -> None:
    with Session(tampered) as session:
        with pytest.raises(SessionReproducibilityError) as info:
            session.step_events(0)
    text = str(info.value)
    assert text.startswith("Step 0 of")
    assert "does not reproduce" in text
    assert "the file was changed after recording or is damaged" in text
    assert "on this machine" not in text


def test_other_versions_still_name_them(tampered: Path) -> None:
    _edit_meta(tampered, "numpy_version", lambda _: "1.0.0")
    with Session(tampered) as session:
        with pytest.raises(SessionReproducibilityError) as info:
            session.step_events(0)
    text = str(info.value)
    assert "does not reproduce on this machine" in text
    assert "recorded with NumPy 1.0.0" in text
