"""An epoch's training metrics: from its batches, or from one more evaluation pass.

``train_metrics="batches"`` (the default) reports the mean per-sample loss and
the accuracy over the batches the epoch trained on, each with the parameters and
dropout of its own step; ``"evaluation"`` evaluates the whole training set after
the epoch. Both are checked here against the per-step events themselves.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine import (
    ConfigError,
    Dataset,
    LayerSpec,
    NetworkSpec,
    Trainer,
    TrainingConfig,
)
from engine import events as ev
from engine.trainer import evaluate


def _blobs(task: str, n: int = 23, seed: int = 4) -> Dataset:
    g = np.random.default_rng(seed)
    X = g.normal(size=(n + 7, 3))
    if task == "multiclass":
        y = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    elif task == "binary":
        y = (X[:, :1] + 0.3 * X[:, 1:2] > 0).astype(float)
    else:
        y = X[:, :1] * 2.0 - X[:, 2:3]
    return Dataset("blobs", task, X[:n], y[:n], X[n:], y[n:], ("a", "b", "c"))


CASES = {
    "multiclass": (3, "softmax", "categorical_cross_entropy"),
    "binary": (1, "sigmoid", "binary_cross_entropy"),
    "regression": (1, "identity", "mse"),
}


def _spec(task: str, dropout: float = 0.0) -> NetworkSpec:
    n_out, out, _ = CASES[task]
    return NetworkSpec(
        3, (LayerSpec(5, "tanh", dropout=dropout), LayerSpec(n_out, out))
    )


def _config(task: str, **changes: object) -> TrainingConfig:
    settings: dict[str, object] = {
        "loss": CASES[task][2],
        "optimizer": "momentum",
        "lr": 0.2,
        "epochs": 3,
        "batch_size": 5,  # 23 rows: 5 steps per epoch, the last one of 3 rows
        "seed": 2,
    }
    settings.update(changes)
    return TrainingConfig(**settings)  # type: ignore[arg-type]


def _hits(task: str, y_hat: np.ndarray, y: np.ndarray) -> int:
    if task == "multiclass":
        return int((y_hat.argmax(axis=1) == y.argmax(axis=1)).sum())
    return int(((y_hat >= 0.5) == (y >= 0.5)).all(axis=1).sum())


@pytest.mark.parametrize("task", list(CASES))
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_batch_metrics_are_the_mean_over_the_epochs_batches(
    task: str, dropout: float
) -> None:
    data = _blobs(task)
    log: list[ev.Event] = []
    trainer = Trainer(_spec(task, dropout), _config(task), data, sink=log.append)
    trainer.run()
    epochs = [e for e in log if isinstance(e, ev.EpochCompleted)]
    assert len(epochs) == 3
    for done in epochs:
        losses = [
            e for e in log if isinstance(e, ev.LossComputed) and e.epoch == done.epoch
        ]
        assert sum(e.y.shape[0] for e in losses) == data.n_train
        per_sample = np.concatenate([e.per_sample for e in losses])
        np.testing.assert_allclose(
            done.train["loss"], per_sample.mean(), rtol=1e-13, atol=0
        )
        if task == "regression":
            assert set(done.train) == {"loss"}
        else:
            hits = sum(_hits(task, e.y_hat, e.y) for e in losses)
            assert done.train["accuracy"] == hits / data.n_train


@pytest.mark.parametrize("task", list(CASES))
def test_evaluation_metrics_evaluate_the_training_set_after_the_epoch(
    task: str,
) -> None:
    data = _blobs(task)
    config = _config(task, train_metrics="evaluation")
    log: list[ev.Event] = []
    Trainer(_spec(task, 0.3), config, data, sink=log.append).run()
    for done in (e for e in log if isinstance(e, ev.EpochCompleted)):
        # The parameters after the epoch's last update, rebuilt by a fresh run.
        probe = Trainer(_spec(task, 0.3), config, data)
        while probe.step_index <= done.step:
            probe.train_step()
        assert done.train == evaluate(probe, data.X_train, data.y_train)
        assert done.test == evaluate(probe, data.X_test, data.y_test)


def test_a_run_continued_from_inside_an_epoch_gives_the_same_epoch_metrics() -> None:
    data, task = _blobs("multiclass"), "multiclass"
    full: list[ev.Event] = []
    Trainer(_spec(task, 0.2), _config(task), data, sink=full.append).run()
    silent = Trainer(_spec(task, 0.2), _config(task), data)
    silent.begin()
    for _ in range(7):  # two steps into epoch 2
        silent.train_step()
    state = silent.state()
    assert state.epoch_sums is not None and state.epoch_sums[1] > 0
    tail: list[ev.Event] = []
    Trainer(_spec(task, 0.2), _config(task), data, sink=tail.append, state=state).run()
    want = [e for e in full if isinstance(e, ev.EpochCompleted)][1:]
    got = [e for e in tail if isinstance(e, ev.EpochCompleted)]
    assert got == want


def test_a_state_from_inside_an_epoch_without_sums_cannot_give_epoch_metrics() -> None:
    data, task = _blobs("binary"), "binary"
    silent = Trainer(_spec(task), _config(task), data)
    for _ in range(2):
        silent.train_step()
    state = dataclasses.replace(silent.state(), epoch_sums=None)
    Trainer(_spec(task), _config(task), data, state=state).run()  # silent: fine
    with pytest.raises(RuntimeError, match="epoch's sums"):
        Trainer(_spec(task), _config(task), data, sink=print, state=state)


def test_an_unknown_train_metrics_setting_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="batches, evaluation"):
        TrainingConfig(train_metrics="running")
