"""Comparing two recorded runs: settings, first difference, weight drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import Session, record
from sessions.compare import compare
from sessions.datasets import load_dataset
from sessions.fork import fork

SPEC = NetworkSpec(2, (LayerSpec(5, "tanh"), LayerSpec(1, "sigmoid")))
DATA = load_dataset("moons", n_samples=120, seed=4)  # 96 training rows


def _run(path: Path, **changes: object) -> Path:
    settings: dict[str, object] = {
        "loss": "bce",
        "optimizer": "sgd",
        "lr": 0.3,
        "epochs": 4,
        "batch_size": 24,
        "seed": 1,
    }
    settings.update(changes)
    record(SPEC, TrainingConfig(**settings), DATA, path)  # type: ignore[arg-type]
    return path


def test_identical_runs_have_no_difference_and_no_drift(tmp_path: Path) -> None:
    a, b = _run(tmp_path / "a.session"), _run(tmp_path / "b.session")
    with Session(a) as sa, Session(b) as sb:
        c = compare(sa, sb)
    assert c.settings == [] and c.first_step is None and c.first_event is None
    assert c.common == (0, 16)
    assert c.drift.shape == (len(c.drift_steps), 2) and not c.drift.any()


def test_a_new_rate_differs_at_the_first_update_and_drifts(tmp_path: Path) -> None:
    a, b = _run(tmp_path / "a.session"), _run(tmp_path / "b.session", lr=0.31)
    with Session(a) as sa, Session(b) as sb:
        c = compare(sa, sb)
    assert c.settings == [("lr", 0.3, 0.31)]
    # Step 0 starts from the same weights: only its update differs, which the
    # summary (update ratios) shows at once.
    assert c.first_step == 0
    assert c.first_event is not None
    assert c.first_event.startswith("parameters_updated of layer 1: lr differs")
    assert (c.drift[1:] > 0).all()
    assert c.drift[-1].max() > c.drift[1].max()  # they drift further apart


def test_another_seed_differs_from_the_first_weights(tmp_path: Path) -> None:
    a, b = _run(tmp_path / "a.session"), _run(tmp_path / "b.session", seed=2)
    with Session(a) as sa, Session(b) as sb:
        c = compare(sa, sb)
    assert ("seed", 1, 2) in c.settings
    assert c.first_step == 0
    assert c.first_event is not None and "batch_sampled" in c.first_event


def test_a_fork_lines_up_with_its_parent(tmp_path: Path) -> None:
    a = _run(tmp_path / "a.session")
    child = tmp_path / "fork.session"
    with Session(a) as sa:
        fork(sa, 6, child, changes={"lr": 0.9})
    with Session(a) as sa, Session(child) as sc:
        c = compare(sa, sc)
        assert c.offset == 6 and c.common == (6, 16)
        assert c.first_step == 6  # the fork's step 0 is the parent's step 6
        assert c.drift_steps[0] == 6
    assert c.first_event is not None and "lr differs" in c.first_event
    assert ("start_step", 0, 6) in c.settings


@pytest.mark.parametrize("other", [{"epochs": 2}, {"batch_size": 48}])
def test_runs_of_other_lengths_compare_over_what_they_share(
    tmp_path: Path, other: dict[str, object]
) -> None:
    a, b = _run(tmp_path / "a.session"), _run(tmp_path / "b.session", **other)
    with Session(a) as sa, Session(b) as sb:
        c = compare(sa, sb)
        assert c.common == (0, min(sa.n_steps, sb.n_steps))
    assert np.isfinite(c.drift).all()
