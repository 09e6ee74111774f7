"""Test the trainer's event stream: determinism, continuation, order, immutability."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine import (
    EVENT_TYPES,
    ConfigError,
    Dataset,
    LayerSpec,
    NetworkSpec,
    Trainer,
    TrainingConfig,
)
from engine import events as ev

SameEvents = Callable[[list[ev.Event], list[ev.Event]], None]

SPEC = NetworkSpec(
    3,
    (
        LayerSpec(5, "relu", dropout=0.3),
        LayerSpec(4, "tanh", dropout=0.1),
        LayerSpec(3, "softmax"),
    ),
)


def _data(n: int = 11, seed: int = 3) -> Dataset:
    g = np.random.default_rng(seed)
    X = g.normal(size=(n + 4, 3))
    y = np.eye(3)[np.arange(n + 4) % 3]
    return Dataset("blobs", "multiclass", X[:n], y[:n], X[n:], y[n:], ("a", "b", "c"))


def _config(**changes: Any) -> TrainingConfig:
    settings: dict[str, Any] = {
        "loss": "categorical_cross_entropy",
        "optimizer": "adam",
        "lr": 0.05,
        "epochs": 3,
        "batch_size": 4,
        "seed": 7,
        "l2": 0.01,
    }
    settings.update(changes)
    return TrainingConfig(**settings)


def _run(
    config: TrainingConfig | None = None,
    spec: NetworkSpec = SPEC,
    data: Dataset | None = None,
) -> tuple[Trainer, list[ev.Event]]:
    log: list[ev.Event] = []
    t = Trainer(spec, config or _config(), data or _data(), sink=log.append)
    t.run()
    return t, log


# -- determinism -----------------------------------------------------------------


def test_trainer_same_seed_gives_identical_events(
    assert_same_events: SameEvents,
) -> None:
    _, first = _run()
    _, second = _run()
    assert len(first) > 100
    assert_same_events(first, second)


def test_trainer_different_seeds_differ_in_weights_batches_and_masks() -> None:
    _, a = _run(_config(seed=1))
    _, b = _run(_config(seed=2))
    for cls, field in (
        (ev.ParametersInitialized, "W"),
        (ev.BatchSampled, "indices"),
        (ev.DropoutApplied, "mask"),
    ):
        xs = [getattr(e, field) for e in a if isinstance(e, cls)]
        ys = [getattr(e, field) for e in b if isinstance(e, cls)]
        assert len(xs) == len(ys) > 0
        assert any(not np.array_equal(x, y) for x, y in zip(xs, ys, strict=True))


@pytest.mark.parametrize(
    "config",
    [
        _config(),
        _config(optimizer="momentum", shuffle=False),
        _config(optimizer="rmsprop", batch_size=None, epochs=9),
        _config(optimizer="gd", batch_size=None, l2=0.0, epochs=9),
    ],
    ids=["adam", "momentum-no-shuffle", "rmsprop-full-batch", "gd"],
)
@pytest.mark.parametrize("split", [1, 3, 5, 7])
def test_trainer_continued_from_state_emits_the_same_events(
    config: TrainingConfig, split: int, assert_same_events: SameEvents
) -> None:
    data = _data()
    _, full = _run(config, data=data)

    log: list[ev.Event] = []
    first = Trainer(SPEC, config, data, sink=log.append)
    first.begin()
    for _ in range(split):
        first.train_step()
    second = Trainer(SPEC, config, data, sink=log.append, state=first.state())
    assert second.step_index == split
    assert second.run() == "completed"
    assert_same_events(log, full)


def test_trainer_continued_from_a_silent_run_emits_the_same_tail(
    assert_same_events: SameEvents,
) -> None:
    config, data = _config(), _data()
    _, full = _run(config, data=data)
    silent = Trainer(SPEC, config, data)
    silent.begin()
    for _ in range(4):
        silent.train_step()
    state = silent.state()
    tail: list[ev.Event] = []
    Trainer(SPEC, config, data, sink=tail.append, state=state).run()
    assert tail[0].seq == state.seq
    assert_same_events(tail, full[state.seq :])


def test_trainer_state_can_be_continued_twice(assert_same_events: SameEvents) -> None:
    config, data = _config(), _data()
    t = Trainer(SPEC, config, data, sink=lambda e: None)
    t.begin()
    for _ in range(2):
        t.train_step()
    state = t.state()
    runs = []
    for _ in range(2):
        log: list[ev.Event] = []
        Trainer(SPEC, config, data, sink=log.append, state=state).run()
        runs.append(log)
    assert_same_events(runs[0], runs[1])
    # The original trainer is not disturbed by the runs started from its state.
    log = []
    t.sink = log.append
    t.run()
    assert_same_events(log, runs[0])


def test_trainer_without_sink_trains_to_identical_parameters() -> None:
    config, data = _config(), _data()
    loud, log = _run(config, data=data)
    quiet = Trainer(SPEC, config, data)
    assert quiet.run() == "completed"
    assert quiet.next_seq == loud.next_seq == len(log)
    for p, q in zip(loud.params, quiet.params, strict=True):
        assert p["W"].tobytes() == q["W"].tobytes()
        assert p["b"].tobytes() == q["b"].tobytes()
    a, b = loud.state(), quiet.state()
    for s, r in zip(a.opt_state, b.opt_state, strict=True):
        for name in ("W", "b"):
            assert s[name].keys() == r[name].keys()
            for key in s[name]:
                assert s[name][key].tobytes() == r[name][key].tobytes()
    assert a.dropout_rng == b.dropout_rng


# -- the event stream ------------------------------------------------------------


def test_trainer_events_are_not_mutated_by_later_training(
    assert_same_events: SameEvents,
) -> None:
    log: list[ev.Event] = []
    snapshots: list[ev.Event] = []

    def sink(e: ev.Event) -> None:
        log.append(e)
        snapshots.append(copy.deepcopy(e))

    for optimizer in ("adam", "momentum", "rmsprop", "sgd"):
        log.clear()
        snapshots.clear()
        Trainer(SPEC, _config(optimizer=optimizer), _data(), sink=sink).run()
        assert_same_events(log, snapshots)


def test_trainer_seq_starts_at_0_and_grows_by_1() -> None:
    _, log = _run()
    assert [e.seq for e in log] == list(range(len(log)))


def _expected_step(
    n_layers: int, dropout: set[int], end_of_epoch: bool
) -> list[tuple[str, int | None, str | None]]:
    """Return the (kind, layer, name) sequence ``Trainer.train_step`` documents."""
    out: list[tuple[str, int | None, str | None]] = [("batch_sampled", None, None)]
    for i in range(n_layers):
        out += [("weighted_sum_computed", i, None), ("activation_computed", i, None)]
        if i in dropout:
            out.append(("dropout_applied", i, None))
    out.append(("loss_computed", None, None))
    out.append(("gradient_computed", None, "dy_hat"))
    for i in range(n_layers - 1, -1, -1):
        names = ["da"] if i in dropout else []
        names += ["dz", "dW", "db"] + (["da_prev"] if i > 0 else [])
        out += [("gradient_computed", i, name) for name in names]
    for i in range(n_layers):
        out += [("parameters_updated", i, "W"), ("parameters_updated", i, "b")]
    out.append(("step_completed", None, None))
    if end_of_epoch:
        out.append(("epoch_completed", None, None))
    return out


def test_trainer_emits_events_in_the_documented_order() -> None:
    config, data = _config(batch_size=4), _data(n=11)
    t, log = _run(config, data=data)
    steps_per_epoch = 3  # 11 rows in batches of 4, 4 and 3
    n_layers = len(SPEC.layers)
    expected: list[tuple[str, int | None, str | None]] = [
        ("session_started", None, None)
    ]
    expected += [("parameters_initialized", i, None) for i in range(n_layers)]
    headers: list[tuple[int, int]] = [(0, 0)] * len(expected)
    for step in range(t.total_steps):
        kinds = _expected_step(n_layers, {0, 1}, (step + 1) % steps_per_epoch == 0)
        expected += kinds
        headers += [(step, step // steps_per_epoch)] * len(kinds)
    expected.append(("session_ended", None, None))
    headers.append((t.total_steps - 1, (t.total_steps - 1) // steps_per_epoch))

    got = [(e.kind, e.layer, getattr(e, "name", None)) for e in log]
    assert got == expected
    assert [(e.step, e.epoch) for e in log] == headers
    sizes = [len(e.indices) for e in log if isinstance(e, ev.BatchSampled)]
    assert sizes == [4, 4, 3] * 3
    ended = log[-1]
    assert isinstance(ended, ev.SessionEnded)
    assert (ended.reason, ended.steps) == ("completed", 9)


def test_trainer_divergence_ends_the_step_and_the_run() -> None:
    g = np.random.default_rng(0)
    X = g.normal(size=(8, 2)) * 100
    data = Dataset(
        "big", "regression", X, X @ [[3.0], [-2.0]], X[:0], X[:0, :1], ("a", "b")
    )
    spec = NetworkSpec(2, (LayerSpec(1, "linear"),))
    config = TrainingConfig(loss="mse", optimizer="gd", lr=10.0, epochs=500)
    log: list[ev.Event] = []
    t = Trainer(spec, config, data, sink=log.append)
    assert t.run() == "diverged"
    assert t.done and t.diverged
    diverged, ended = log[-2:]
    assert isinstance(diverged, ev.TrainingDiverged)
    assert isinstance(ended, ev.SessionEnded)
    assert ended.reason == "diverged"
    assert ended.step == diverged.step == ended.steps
    assert not any(
        isinstance(e, ev.StepCompleted) and e.step == diverged.step for e in log
    )
    with pytest.raises(RuntimeError, match="Training is over"):
        t.train_step()


def test_every_event_class_is_frozen() -> None:
    for cls in EVENT_TYPES.values():
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen, cls.__name__  # type: ignore[attr-defined]


def test_every_emitted_event_refuses_changes() -> None:
    _, log = _run(_config(epochs=1))
    kinds = set()
    for e in log:
        kinds.add(e.kind)
        with pytest.raises(dataclasses.FrozenInstanceError):
            e.seq = 99  # type: ignore[misc]
        field = dataclasses.fields(e)[-1].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(e, field, None)
    assert kinds == set(EVENT_TYPES) - {"training_diverged"}


# -- configuration errors --------------------------------------------------------


def test_trainer_rejects_a_network_whose_inputs_do_not_match_the_data() -> None:
    spec = NetworkSpec(2, (LayerSpec(3, "softmax"),))
    with pytest.raises(ConfigError, match="takes 2 inputs but the data has 3"):
        Trainer(spec, _config(), _data())


def test_trainer_rejects_an_output_layer_of_the_wrong_width() -> None:
    spec = NetworkSpec(3, (LayerSpec(4, "relu"), LayerSpec(2, "softmax")))
    with pytest.raises(ConfigError, match=r"output layer has 2 units .* 3 units"):
        Trainer(spec, _config(), _data())


def test_trainer_rejects_gd_with_a_batch_size() -> None:
    with pytest.raises(ConfigError, match="gd optimizer is full-batch"):
        Trainer(SPEC, _config(optimizer="gd", batch_size=4), _data())


def test_trainer_rejects_a_batch_larger_than_the_training_set() -> None:
    with pytest.raises(ConfigError, match="batch_size 12 is larger than the 11"):
        Trainer(SPEC, _config(batch_size=12), _data(n=11))


def test_trainer_accepts_gd_with_the_whole_training_set_as_batch() -> None:
    t = Trainer(SPEC, _config(optimizer="gd", batch_size=11), _data(n=11))
    assert t.steps_per_epoch == 1
