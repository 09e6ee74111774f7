"""Forks: a run continued from any recorded step with changed settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import events as ev
from engine.config import TrainingConfig
from engine.errors import ConfigError
from engine.network import LayerSpec, NetworkSpec
from sessions import Session, record, verify
from sessions.datasets import load_dataset
from sessions.fork import fork, fork_start, parent_state_matches

SPEC = NetworkSpec(2, (LayerSpec(6, "tanh", dropout=0.2), LayerSpec(1, "sigmoid")))


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return an Adam run on moons: 5 epochs of 4 steps (batch 40 of 160)."""
    path = tmp_path_factory.mktemp("fork") / "parent.session"
    config = TrainingConfig(
        loss="bce", optimizer="adam", lr=0.02, epochs=5, batch_size=40, seed=3
    )
    record(SPEC, config, load_dataset("moons", n_samples=200, seed=1), path)
    return path


def _summaries(path: Path) -> np.ndarray:
    with Session(path) as s:
        series = s.series()
        return np.column_stack([series.loss, series.grad_norms, series.update_ratios])


@pytest.mark.parametrize("step", [0, 6, 10, 20])
def test_a_fork_with_nothing_changed_repeats_the_parent_bit_for_bit(
    parent: Path, tmp_path: Path, step: int
) -> None:
    child = tmp_path / "same.session"
    with Session(parent) as p:
        if step == p.n_steps:
            with pytest.raises(ConfigError, match="more epochs"):
                fork(p, step, child)
            return
        assert fork(p, step, child) == "completed"
    np.testing.assert_array_equal(_summaries(child), _summaries(parent)[step:])
    with Session(parent) as p, Session(child) as c:
        assert c.n_steps == p.n_steps - step
        assert c.fork_of is not None and c.fork_of["file"] == "parent.session"
        assert c.meta["fork_step"] == step and c.meta["fork_changes"] == {}
        # The same epochs end at the same places, with the same metrics.
        pe, ce = p.epochs(), c.epochs()
        keep = pe.step >= step
        np.testing.assert_array_equal(ce.epoch, pe.epoch[keep])
        np.testing.assert_array_equal(ce.step + step, pe.step[keep])
        for split in ("train", "test"):
            for name, values in getattr(pe, split).items():
                np.testing.assert_array_equal(getattr(ce, split)[name], values[keep])
        # Any step of the fork is the parent's step, event for event.
        for s in range(0, c.n_steps, 3):
            mine = [e for e in c.step_events(s) if e.kind != "session_started"]
            theirs = p.step_events(step + s)
            mine = [e for e in mine if not isinstance(e, ev.ParametersInitialized)]
            theirs = [
                e
                for e in theirs
                if e.kind not in ("session_started", "parameters_initialized")
            ]
            assert [type(e) for e in mine] == [type(e) for e in theirs]
        assert parent_state_matches(c, p)
    assert verify(child).ok


def test_a_fork_with_a_new_learning_rate_changes_only_from_the_fork(
    parent: Path, tmp_path: Path
) -> None:
    child = tmp_path / "lr.session"
    with Session(parent) as p:
        fork(p, 6, child, changes={"lr": 0.2})
        before = p.params_after(5)
    with Session(child) as c:
        assert c.config.lr == 0.2 and c.config.start_step == 6
        assert c.meta["fork_changes"] == {"lr": 0.2}
        assert "fork at step 6" in c.title
        start = c.state_before(0).params
        for a, b in zip(start, before, strict=True):
            np.testing.assert_array_equal(a["W"], b["W"])
        # The first update uses the new rate on the parent's Adam moments.
        first = [e for e in c.step_events(0) if isinstance(e, ev.ParametersUpdated)]
        assert all(e.lr == 0.2 and e.t == 7 for e in first)
    assert not np.array_equal(_summaries(child)[1:], _summaries(parent)[7:])
    assert verify(child).ok


def test_a_new_optimizer_starts_fresh_and_counts_its_own_steps(
    parent: Path, tmp_path: Path
) -> None:
    child = tmp_path / "sgd.session"
    with Session(parent) as p:
        fork(p, 8, child, changes={"optimizer": "momentum", "lr": 0.1})
    with Session(child) as c:
        assert c.config.optimizer_start == 8
        first = [e for e in c.step_events(0) if isinstance(e, ev.ParametersUpdated)]
        assert all(e.t == 1 for e in first)
        # Fresh velocity: after one step it is exactly the gradient.
        for e in first:
            np.testing.assert_array_equal(e.state["velocity"], e.grad)
    assert verify(child).ok


def test_a_new_batch_size_starts_the_current_epoch_over(
    parent: Path, tmp_path: Path
) -> None:
    child = tmp_path / "batch.session"
    with Session(parent) as p:
        fork(p, 6, child, changes={"batch_size": 80})  # inside epoch 2
    with Session(child) as c:
        assert c.config.start_step == 2  # epoch 2 of 2-step epochs
        assert c.n_steps == 2 * 5 - 2
        assert c.epochs().epoch[0] == 1
        assert c.epochs().train["loss"].shape == (4,)
    assert verify(child).ok


def test_weights_edited_by_hand_and_dropout_go_into_the_fork(
    parent: Path, tmp_path: Path
) -> None:
    child = tmp_path / "edit.session"
    with Session(parent) as p:
        fork(p, 4, child, dropout=[0.0, 0.0], edits={(0, "W", (1, 2)): 3.5})
    with Session(child) as c:
        assert c.state_before(0).params[0]["W"][1, 2] == 3.5
        assert [layer.dropout for layer in c.spec.layers] == [0.0, 0.0]
        assert c.meta["fork_edits"] == [
            {"layer": 0, "param": "W", "index": [1, 2], "value": 3.5}
        ]
        assert "weights edited" in c.title
        events = c.step_events(0)
        assert not any(isinstance(e, ev.DropoutApplied) for e in events)
    assert verify(child).ok


def test_a_new_seed_reshuffles_from_the_fork_on(parent: Path, tmp_path: Path) -> None:
    child = tmp_path / "seed.session"
    with Session(parent) as p:
        fork(p, 4, child, changes={"seed": 99})
        parent_batch = next(
            e for e in p.step_events(4) if isinstance(e, ev.BatchSampled)
        ).indices
    with Session(child) as c:
        batch = next(
            e for e in c.step_events(0) if isinstance(e, ev.BatchSampled)
        ).indices
    assert not np.array_equal(batch, parent_batch)
    assert verify(child).ok


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step": -1}, "not in parent.session"),
        ({"step": 99}, "not in parent.session"),
        ({"changes": {"loss": "mse"}}, "cannot change loss"),
        ({"changes": {"lr": -1.0}}, "lr"),
        ({"dropout": [0.1]}, "one dropout rate per layer"),
        ({"dropout": [0.0, 0.5]}, "output"),
        ({"edits": {(5, "W", (0, 0)): 1.0}}, "layer"),
    ],
)
def test_impossible_forks_are_refused_with_the_fix(
    parent: Path, kwargs: dict, match: str
) -> None:
    args = {"step": 4, **kwargs}
    with Session(parent) as p, pytest.raises(ConfigError, match=match):
        fork_start(
            p,
            args["step"],
            args.get("changes"),
            args.get("dropout"),
            args.get("edits"),
        )


def test_a_fork_of_a_fork_continues_the_family(parent: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.session", tmp_path / "b.session"
    with Session(parent) as p:
        fork(p, 4, first, changes={"lr": 0.05})
    with Session(first) as f:
        fork(f, 3, second)
        assert parent_state_matches(Session(second), f)
    with Session(second) as s:
        assert s.config.start_step == 7 and s.fork_of["file"] == "a.session"  # type: ignore[index]
    np.testing.assert_array_equal(_summaries(second), _summaries(first)[3:])
    assert verify(second).ok
