"""The background training job: records in a thread, stops on request."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine import LayerSpec, NetworkSpec, TrainingConfig
from engine.errors import ConfigError
from sessions import Session, verify
from sessions.datasets import load_dataset
from ui.training_job import TrainingJob, session_path


def _run(**config: object) -> tuple[NetworkSpec, TrainingConfig, object]:
    data = load_dataset("moons", n_samples=40, seed=0)
    spec = NetworkSpec(2, (LayerSpec(4, "tanh"), LayerSpec(1, "sigmoid")))
    settings = {
        "loss": "binary_cross_entropy",
        "optimizer": "sgd",
        "lr": 0.1,
        "epochs": 5,
        "batch_size": 8,
        **config,
    }
    return spec, TrainingConfig(**settings), data


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.01)


def test_session_path_is_safe_and_unique(tmp_path: Path) -> None:
    path = session_path(tmp_path, "../../etc/passwd <b>x</b>")
    assert path.parent == tmp_path
    assert path.name.startswith("etc-passwd-b-x-b-")
    path.write_bytes(b"")
    again = session_path(tmp_path, "../../etc/passwd <b>x</b>")
    assert again != path and again.parent == tmp_path
    assert session_path(tmp_path, "   ").name.startswith("run-")


def test_job_trains_to_completion_in_a_thread(tmp_path: Path) -> None:
    spec, config, data = _run()
    job = TrainingJob(spec, config, data, tmp_path / "a.session", title="mine")
    assert job.total_steps == 20 and job.status == "ready"
    job.start()
    job.join(60)
    assert job.status == "completed" and not job.running
    with Session(job.path) as s:
        assert s.n_steps == 20
        assert s.status == "completed"
        assert s.title == "mine"
    assert verify(job.path).ok


def test_stop_ends_early_with_status_stopped_and_the_file_verifies(
    tmp_path: Path,
) -> None:
    spec, config, data = _run(epochs=2000)
    job = TrainingJob(spec, config, data, tmp_path / "b.session")
    job.start()
    wait_for(lambda: job.step >= 5)
    job.stop()
    job.join(60)
    assert job.status == "stopped"
    with Session(job.path) as s:
        assert s.status == "stopped"
        assert 5 <= s.n_steps < job.total_steps
    assert verify(job.path).ok


def test_bad_settings_raise_before_any_file_exists(tmp_path: Path) -> None:
    spec, config, data = _run(loss="categorical_cross_entropy")
    with pytest.raises(ConfigError):
        TrainingJob(spec, config, data, tmp_path / "c.session")
    spec, config, data = _run()
    with pytest.raises(ConfigError, match="outside its shape"):
        TrainingJob(
            spec,
            config,
            data,
            tmp_path / "c.session",
            initial_values={(0, "W", (5, 0)): 1.0},
        )
    assert not (tmp_path / "c.session").exists()


def test_a_failing_run_reports_its_message(tmp_path: Path) -> None:
    spec, config, data = _run()
    path = tmp_path / "d.session"
    path.write_bytes(b"taken")
    job = TrainingJob(spec, config, data, path)
    job.start()
    job.join(30)
    assert job.status == "failed"
    assert "already exists" in job.message


def test_divergence_ends_with_status_diverged(tmp_path: Path) -> None:
    data = load_dataset("sine", n_samples=40, seed=0)
    spec = NetworkSpec(1, (LayerSpec(8, "relu"), LayerSpec(1, "linear")))
    config = TrainingConfig(loss="mse", optimizer="sgd", lr=1e6, epochs=50)
    job = TrainingJob(spec, config, data, tmp_path / "e.session")
    job.start()
    job.join(60)
    assert job.status == "diverged"
    with Session(job.path) as s:
        assert "smaller learning rate" in s.divergence.message


def test_glassnet_verify_passes_a_hand_set_run_and_fails_a_tampered_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import sqlite3

    from ui.cli import main

    spec, config, data = _run()
    path = tmp_path / "hand.session"
    job = TrainingJob(spec, config, data, path, initial_values={(0, "W", (1, 3)): 1.5})
    job.start()
    job.join(60)
    assert job.status == "completed"
    assert main(["verify", str(path)]) == 0
    assert "OK" in capsys.readouterr().out

    con = sqlite3.connect(path)
    with con:
        entry = [{"layer": 0, "param": "W", "index": [1, 3], "value": 1.25}]
        con.execute(
            "UPDATE meta SET value = ? WHERE key = 'initial_values'",
            (json.dumps(entry),),
        )
    con.close()
    assert main(["verify", str(path)]) != 0
