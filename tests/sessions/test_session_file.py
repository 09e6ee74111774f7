"""Contract of a session file: reading it gives back exactly the live run.

Every test records a small run into a file and runs the same configuration
live with a list as the sink; whatever the file gives back (the events of a
step, one event, a range of events, series, epoch metrics, states) must equal
the live run bit for bit: same event types, same fields, arrays with the same
dtype, shape and bytes, floats with the same bits (NaN equals NaN).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import (
    OPTIMIZERS,
    Dataset,
    LayerSpec,
    NetworkSpec,
    Trainer,
    TrainerState,
    TrainingConfig,
)
from engine import events as ev
from sessions import (
    Recorder,
    Session,
    SessionError,
    SessionFormatError,
    SessionReproducibilityError,
    record,
    verify,
)
from sessions.datasets import load_dataset

# -- comparing events bit for bit ------------------------------------------


def same_value(a: Any, b: Any) -> bool:
    """Return True when two field values are equal bit for bit.

    Arrays need the same dtype, shape and bytes; floats the same bits (NaN
    equals NaN, 0.0 differs from -0.0); containers the same type, keys in the
    same order and equal items.
    """
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
            and a.tobytes() == b.tobytes()
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and all(same_value(a[k], b[k]) for k in a)
        )
    if isinstance(a, list | tuple):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, float) and isinstance(b, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    return type(a) is type(b) and a == b


def first_difference(got: list[ev.Event], want: list[ev.Event]) -> str | None:
    """Describe the first place two event lists differ, or return None."""
    for i, (x, y) in enumerate(zip(got, want, strict=False)):
        if type(x) is not type(y):
            return f"event {i}: got {x.kind}, want {y.kind}"
        for f in dataclasses.fields(x):
            if not same_value(getattr(x, f.name), getattr(y, f.name)):
                return (
                    f"event {i} ({x.kind}, seq {x.seq}): field {f.name} is "
                    f"{getattr(x, f.name)!r}, want {getattr(y, f.name)!r}"
                )
    if len(got) != len(want):
        return f"got {len(got)} events, want {len(want)}"
    return None


def assert_same_events(got: list[ev.Event], want: list[ev.Event]) -> None:
    """Fail with the first difference between two event lists."""
    where = first_difference(got, want)
    assert where is None, where


def assert_same_state(
    got: TrainerState, want: TrainerState, state_names: tuple[str, ...]
) -> None:
    """Fail unless two trainer states are equal bit for bit.

    Only the optimizer state a run continues from (``state_names``) is
    compared: Adam's ``m_hat`` and ``v_hat`` of the previous update are kept
    by a live trainer but are not part of a keyframe, as they follow from
    ``m`` and ``v``.
    """
    assert got.step == want.step
    assert got.seq == want.seq
    assert same_value(got.params, want.params)

    def kept(opt_state: list[dict[str, dict[str, Any]]]) -> list[Any]:
        return [
            {k: {n: s[k][n] for n in state_names} for k in ("W", "b")}
            for s in opt_state
        ]

    assert same_value(kept(got.opt_state), kept(want.opt_state))
    assert got.dropout_rng == want.dropout_rng


# -- the runs under test -----------------------------------------------------


def _moons() -> Dataset:
    return load_dataset("moons", n_samples=40, seed=0)  # 32 train, 8 test rows


def _c04() -> tuple[NetworkSpec, Dataset]:
    """Return case C04: one linear unit, w = b = 0, on x = 1, 2, 3, y = 2x."""
    X = np.array([[1.0], [2.0], [3.0]])
    y = 2.0 * X
    data = Dataset("c04", "regression", X, y, X[:0], y[:0], ("x",), target_name="y")
    spec = NetworkSpec(
        1,
        (LayerSpec(1, "linear"),),
        initial_params=[{"W": [[0.0]], "b": [0.0]}],
    )
    return spec, data


def _tanh_net(dropout: float = 0.0) -> NetworkSpec:
    return NetworkSpec(
        2, (LayerSpec(5, "tanh", dropout=dropout), LayerSpec(1, "sigmoid"))
    )


def build_case(name: str) -> tuple[NetworkSpec, TrainingConfig, Dataset, int]:
    """Return the network, settings, data and keyframe interval of a case."""
    bce = {"loss": "bce", "seed": 3}
    if name == "sgd_minibatch":
        config = TrainingConfig(optimizer="sgd", lr=0.3, epochs=6, batch_size=8, **bce)
        return _tanh_net(), config, _moons(), 10
    if name == "sgd_ragged_batches":
        # 32 rows in batches of 10: the last batch of every epoch has 2 rows.
        config = TrainingConfig(optimizer="sgd", lr=0.3, epochs=3, batch_size=10, **bce)
        return _tanh_net(), config, _moons(), 3
    if name == "gd_full_batch":
        config = TrainingConfig(optimizer="gd", lr=0.5, epochs=12, **bce)
        return _tanh_net(), config, _moons(), 1
    if name == "adam":
        config = TrainingConfig(
            optimizer="adam", lr=0.02, epochs=5, batch_size=16, **bce
        )
        return _tanh_net(), config, _moons(), 3
    if name == "momentum":
        config = TrainingConfig(
            optimizer="momentum", lr=0.05, epochs=5, batch_size=8, **bce
        )
        return _tanh_net(), config, _moons(), 10
    if name in ("rmsprop", "nesterov"):
        config = TrainingConfig(optimizer=name, lr=0.01, epochs=4, batch_size=16, **bce)
        return _tanh_net(), config, _moons(), 3
    if name == "dropout":
        config = TrainingConfig(optimizer="sgd", lr=0.2, epochs=5, batch_size=8, **bce)
        return _tanh_net(dropout=0.4), config, _moons(), 3
    if name == "l2":
        config = TrainingConfig(
            optimizer="sgd", lr=0.2, epochs=5, batch_size=8, l2=0.05, **bce
        )
        return _tanh_net(), config, _moons(), 1
    if name == "iris_softmax":
        spec = NetworkSpec(4, (LayerSpec(6, "relu"), LayerSpec(3, "softmax")))
        config = TrainingConfig(
            loss="cce", optimizer="adam", lr=0.01, epochs=2, batch_size=32, seed=1
        )
        return spec, config, load_dataset("iris", seed=0), 3
    if name.startswith("c04_diverges_kf"):
        spec, data = _c04()
        config = TrainingConfig(loss="mse", optimizer="gd", lr=1.0, epochs=400)
        return spec, config, data, int(name.removeprefix("c04_diverges_kf"))
    raise KeyError(name)


CASES = [
    "sgd_minibatch",
    "sgd_ragged_batches",
    "gd_full_batch",
    "adam",
    "momentum",
    "rmsprop",
    "nesterov",
    "dropout",
    "l2",
    "iris_softmax",
    "c04_diverges_kf1",
    "c04_diverges_kf3",
    "c04_diverges_kf10",
]


@dataclass
class Run:
    """A case recorded to ``path`` and the same case run live."""

    name: str
    spec: NetworkSpec
    config: TrainingConfig
    data: Dataset
    keyframe_interval: int
    path: Path
    reason: str
    live: list[ev.Event]
    states: list[TrainerState]  # states[s]: the live state before step s
    final: TrainerState
    recorded_between: tuple[float, float]

    def live_step(self, step: int) -> list[ev.Event]:
        """Return the live events whose header says ``step``."""
        return [e for e in self.live if e.step == step]


def run_case(name: str, path: Path) -> Run:
    """Record case ``name`` into ``path`` and run it live too."""
    spec, config, data, kf = build_case(name)
    live: list[ev.Event] = []
    states: list[TrainerState] = []
    trainer = Trainer(spec, config, data, sink=live.append)
    trainer.run(before_step=lambda t: states.append(t.state()))
    t0 = time.time()
    reason = record(spec, config, data, path, keyframe_interval=kf)
    t1 = time.time()
    return Run(
        name, spec, config, data, kf, path, reason, live, states,
        trainer.state(), (t0, t1),
    )  # fmt: skip


@pytest.fixture(scope="module", params=CASES)
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """Return one case, recorded once for the whole module."""
    folder = tmp_path_factory.mktemp(request.param)
    return run_case(request.param, folder / f"{request.param}.session")


@pytest.fixture(scope="module")
def sgd_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Return the mini-batch SGD case, for tests that tamper with a copy."""
    return run_case("sgd_minibatch", tmp_path_factory.mktemp("sgd") / "a.session")


@pytest.fixture(scope="module")
def c04_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Return the diverging case C04 with a keyframe every 3 steps."""
    return run_case("c04_diverges_kf3", tmp_path_factory.mktemp("c04") / "c.session")


def copy_session(run: Run, tmp_path: Path) -> Path:
    """Return a copy of a recorded (closed, checkpointed) session file."""
    out = tmp_path / "copy.session"
    out.write_bytes(run.path.read_bytes())
    return out


# -- rebuilding steps --------------------------------------------------------


def test_live_cases_cover_what_they_claim(run: Run) -> None:
    kinds = {e.kind for e in run.live}
    if run.name.startswith("c04"):
        assert run.reason == "diverged"
        # C04 overflows to inf at step 153 (0-based): the 154th step.
        assert run.live[-2].kind == "training_diverged"
        assert run.live[-2].step == 153
    else:
        assert run.reason == "completed"
    if run.name == "dropout":
        assert "dropout_applied" in kinds
    if run.name == "l2":
        losses = [e for e in run.live if isinstance(e, ev.LossComputed)]
        assert all(e.l2_penalty > 0 for e in losses)
    # Every run is long enough to read from a keyframe after the first one.
    assert len(run.states) > run.keyframe_interval


def test_step_events_equal_the_live_run_for_every_step(run: Run) -> None:
    with Session(run.path) as session:
        assert session.n_steps == len(run.states)
        for step in range(session.n_steps):
            got = session.step_events(step)
            assert_same_events(got, run.live_step(step))


def test_step_events_read_backwards_and_at_random_equal_the_live_run(
    run: Run,
) -> None:
    # Reading out of order must not depend on the trainer cached by earlier reads.
    order = list(range(len(run.states)))[::-1]
    rng = np.random.default_rng(7)
    order += [int(s) for s in rng.integers(0, len(run.states), size=15)]
    with Session(run.path) as session:
        for step in order:
            assert_same_events(session.step_events(step), run.live_step(step))


def test_step_events_of_step_0_start_with_the_opening_events(run: Run) -> None:
    with Session(run.path) as session:
        first = session.step_events(0)
    assert isinstance(first[0], ev.SessionStarted)
    assert first[0].seq == 0
    n_layers = len(run.spec.layers)
    assert all(isinstance(e, ev.ParametersInitialized) for e in first[1 : 1 + n_layers])


def test_step_events_of_the_last_step_end_with_the_session_end(run: Run) -> None:
    with Session(run.path) as session:
        last = session.step_events(session.last_step)
    assert isinstance(last[-1], ev.SessionEnded)
    assert last[-1].reason == run.reason
    if run.reason == "diverged":
        assert isinstance(last[-2], ev.TrainingDiverged)


# Steps and sequence numbers are names, not positions: -1 is not "the last".
@pytest.mark.parametrize("step", [-1, -100, 24, 29])
def test_step_events_outside_the_run_raise_index_error(sgd_run: Run, step: int) -> None:
    with Session(sgd_run.path) as session:
        assert session.n_steps == 24
        with pytest.raises(IndexError, match=f"Step {step} is not in the session"):
            session.step_events(step)


def test_step_events_without_verification_equal_the_live_run(sgd_run: Run) -> None:
    with Session(sgd_run.path, verify_steps=False) as session:
        for step in (0, 5, session.last_step):
            assert_same_events(session.step_events(step), sgd_run.live_step(step))


# -- single events, ranges, last, step_of ------------------------------------


def test_event_returns_every_event_of_the_live_run(run: Run) -> None:
    with Session(run.path) as session:
        assert session.n_events == len(run.live)
        # Every event of short runs; a spread of them for the long C04 runs.
        seqs = range(len(run.live))
        if len(run.live) > 700:
            seqs = sorted(
                {
                    *range(0, len(run.live), 37),
                    *range(len(run.live) - 30, len(run.live)),
                }
            )
        for seq in seqs:
            assert_same_events([session.event(seq)], [run.live[seq]])
            assert_same_events([session.at(seq)], [run.live[seq]])


@pytest.mark.parametrize("seq", [-1, -5, 466, 467, 10**6])
def test_event_outside_the_log_raises_index_error(sgd_run: Run, seq: int) -> None:
    with Session(sgd_run.path) as session:
        assert session.n_events == 466
        with pytest.raises(IndexError, match=f"Event {seq} is not in the session"):
            session.event(seq)
        with pytest.raises(IndexError, match=f"Event {seq} is not in the session"):
            session.step_of(seq)


def test_last_is_the_session_end(run: Run) -> None:
    with Session(run.path) as session:
        assert_same_events([session.last()], [run.live[-1]])
        assert isinstance(session.last(), ev.SessionEnded)


def test_step_of_every_seq_is_the_step_in_its_header(run: Run) -> None:
    with Session(run.path) as session:
        assert [session.step_of(e.seq) for e in run.live] == [e.step for e in run.live]


SLICES = [
    (0, None),
    (0, 1),
    (0, 0),
    (5, 5),
    (7, 3),
    (3, 40),
    (10, 12),
    (-1, None),
    (-25, None),
    (-25, -3),
    (-10_000, 4),
    (-10_000, -9_999),
    (20, -1),
    (0, 10_000),
    (10_000, 20_000),
    (10_000, None),
    (-3, 2),
]


@pytest.mark.parametrize(("start", "stop"), SLICES)
def test_events_follow_python_slice_rules(
    sgd_run: Run, start: int, stop: int | None
) -> None:
    with Session(sgd_run.path) as session:
        got = session.events(start, stop)
    assert_same_events(got, sgd_run.live[start:stop])


def test_events_with_default_arguments_are_the_whole_log(run: Run) -> None:
    with Session(run.path) as session:
        assert_same_events(session.events(), run.live)


def test_events_across_step_boundaries_of_the_diverged_run(c04_run: Run) -> None:
    n = len(c04_run.live)
    with Session(c04_run.path) as session:
        for start, stop in [(n - 30, n), (n - 2, n - 1), (-1, None), (n - 13, -1)]:
            assert_same_events(session.events(start, stop), c04_run.live[start:stop])


# -- whole-run series and epoch metrics ---------------------------------------


def test_series_matches_every_step_completed_of_the_live_run(run: Run) -> None:
    done = [e for e in run.live if isinstance(e, ev.StepCompleted)]
    with Session(run.path) as session:
        series = session.series()
    assert series.step.dtype == np.int64
    assert series.step.tolist() == [e.step for e in done]
    assert series.epoch.tolist() == [e.epoch for e in done]
    for name in ("loss", "data_loss"):
        want = np.array([getattr(e, name) for e in done], dtype=np.float64)
        assert same_value(getattr(series, name).copy(), want), name
    for name in ("grad_norms", "update_ratios"):
        want = np.array([getattr(e, name) for e in done], dtype=np.float64)
        assert want.shape == (len(done), len(run.spec.layers))
        assert same_value(getattr(series, name).copy(), want), name


def test_series_excludes_the_diverged_step(c04_run: Run) -> None:
    with Session(c04_run.path) as session:
        series = session.series()
        assert session.n_steps == 154
    assert series.step.tolist() == list(range(153))
    assert np.isfinite(series.loss).all()


def test_series_recorded_at_is_the_time_each_step_was_stored(run: Run) -> None:
    with Session(run.path) as session:
        stamps = session.series().recorded_at
    t0, t1 = run.recorded_between
    assert stamps.dtype == np.float64
    assert (np.diff(stamps) >= 0).all()
    assert t0 - 1 <= stamps[0] and stamps[-1] <= t1 + 1


def test_epochs_match_every_epoch_completed_of_the_live_run(run: Run) -> None:
    done = [e for e in run.live if isinstance(e, ev.EpochCompleted)]
    with Session(run.path) as session:
        epochs = session.epochs()
    assert epochs.epoch.tolist() == [e.epoch for e in done]
    assert epochs.step.tolist() == [e.step for e in done]
    for part in ("train", "test"):
        columns = getattr(epochs, part)
        keys = sorted({k for e in done for k in getattr(e, part)})
        assert sorted(columns) == keys
        for key in keys:
            want = np.array([getattr(e, part)[key] for e in done], dtype=np.float64)
            assert same_value(columns[key], want), (part, key)


def test_epochs_of_a_run_without_a_test_set_have_no_test_columns(c04_run: Run) -> None:
    with Session(c04_run.path) as session:
        epochs = session.epochs()
    assert epochs.test == {}
    assert list(epochs.train) == ["loss"]
    assert epochs.epoch.tolist() == list(range(153))


# -- states and parameters -----------------------------------------------------


def test_state_before_every_step_equals_the_live_state(run: Run) -> None:
    with Session(run.path) as session:
        for step, want in enumerate(run.states):
            names = OPTIMIZERS[run.config.optimizer].state_names
            assert_same_state(session.state_before(step), want, names)


def test_params_after_every_step_equal_the_live_parameters(run: Run) -> None:
    initial = [e for e in run.live if isinstance(e, ev.ParametersInitialized)]
    with Session(run.path) as session:
        got = session.params_after(-1)
        assert same_value(got, [{"W": e.W, "b": e.b} for e in initial])
        completed = range(len(run.states) - (run.reason == "diverged"))
        for step in completed:
            after = run.states[step + 1] if step + 1 < len(run.states) else run.final
            assert same_value(session.params_after(step), after.params), step


def test_params_after_match_the_parameters_updated_events(sgd_run: Run) -> None:
    with Session(sgd_run.path) as session:
        for step in (0, 7, session.last_step):
            updates = [
                e
                for e in sgd_run.live_step(step)
                if isinstance(e, ev.ParametersUpdated)
            ]
            got = session.params_after(step)
            for e in updates:
                assert e.layer is not None
                assert same_value(got[e.layer][e.name], e.after)


def test_trainer_before_continues_like_the_live_run(sgd_run: Run) -> None:
    with Session(sgd_run.path) as session:
        log: list[ev.Event] = []
        trainer = session.trainer_before(13, sink=log.append)
        trainer.train_step()
        trainer.train_step()
    want = sgd_run.live_step(13) + sgd_run.live_step(14)
    assert_same_events(log, want)


# -- status and following a file still being written ---------------------------


def test_status_of_a_completed_and_a_diverged_run(sgd_run: Run, c04_run: Run) -> None:
    with Session(sgd_run.path) as session:
        assert session.status == "completed"
        assert session.divergence is None
        assert session.end is not None and session.end.reason == "completed"
        assert "status='completed'" in repr(session)
    with Session(c04_run.path) as session:
        assert session.status == "diverged"
        assert session.divergence is not None
        assert session.divergence.step == 153
        assert "infinite" in session.divergence.message


def test_status_of_a_stopped_run_and_its_events(tmp_path: Path) -> None:
    spec, config, data, kf = build_case("sgd_minibatch")
    live: list[ev.Event] = []
    polls = iter(range(10**6))
    reason = Trainer(spec, config, data, sink=live.append).run(
        should_stop=lambda: next(polls) >= 9
    )
    polls = iter(range(10**6))
    path = tmp_path / "stopped.session"
    assert record(spec, config, data, path, should_stop=lambda: next(polls) >= 9) == (
        "stopped"
    )
    assert reason == "stopped"
    with Session(path) as session:
        assert session.status == "stopped"
        assert session.n_steps == 9
        assert session.n_events == len(live)
        assert_same_events(session.events(), live)
    assert verify(path).ok


def test_refresh_follows_a_file_another_recorder_is_writing(tmp_path: Path) -> None:
    spec, config, data, kf = build_case("adam")
    live: list[ev.Event] = []
    Trainer(spec, config, data, sink=live.append).run()

    path = tmp_path / "growing.session"
    trainer = Trainer(spec, config, data)
    rec = Recorder(path, trainer, keyframe_interval=kf)
    trainer.begin()
    for _ in range(4):
        rec.before_step(trainer)
        trainer.train_step()
    rec.flush()
    # A step's row is written when the next step begins: 3 of the 4 are stored.
    session = Session(path)
    try:
        assert session.status == "incomplete"
        assert session.end is None
        assert session.n_recorded == 3
        assert session.last_step == 2
        before = session.n_events
        assert_same_events(session.events(), [e for e in live if e.step < 3])
        with pytest.raises(IndexError):
            session.step_events(3)

        for _ in range(5):
            rec.before_step(trainer)
            trainer.train_step()
        rec.flush()
        assert session.n_recorded == 3  # nothing moves until refresh()
        session.refresh()
        assert session.n_recorded == 8
        assert session.n_events > before
        for step in range(8):
            assert_same_events(
                session.step_events(step), [e for e in live if e.step == step]
            )
        assert session.status == "incomplete"

        trainer.run(before_step=rec.before_step)
        rec.close()
        session.refresh()
        assert session.status == "completed"
        assert session.n_steps == trainer.total_steps
        assert_same_events(session.events(), live)
    finally:
        session.close()


# -- verification --------------------------------------------------------------


def test_verify_is_ok_on_untouched_files(run: Run) -> None:
    report = verify(run.path)
    assert report.ok, report.first_difference
    assert report.first_difference is None
    assert report.steps == len(run.states)
    n_epochs = sum(isinstance(e, ev.EpochCompleted) for e in run.live)
    assert report.epochs == n_epochs
    assert report.keyframes == len(range(0, len(run.states), run.keyframe_interval))
    assert "OK" in report.summary()


def _update(path: Path, sql: str, args: tuple[Any, ...]) -> None:
    con = sqlite3.connect(path)
    with con:
        assert con.execute(sql, args).rowcount == 1
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _dump(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def _one_ulp_more(summary: bytes, index: int) -> bytes:
    values = np.frombuffer(summary, "<f8").copy()
    values[index] = np.nextafter(values[index], np.inf)
    return values.tobytes()


def _row(path: Path, sql: str, args: tuple[Any, ...] = ()) -> Any:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, args).fetchone()
    finally:
        con.close()


@pytest.mark.parametrize(("step", "index"), [(0, 0), (6, 1), (17, 2), (23, 3)])
def test_verify_names_the_step_whose_summary_was_changed(
    sgd_run: Run, tmp_path: Path, step: int, index: int
) -> None:
    path = copy_session(sgd_run, tmp_path)
    (summary,) = _row(path, "SELECT summary FROM steps WHERE step = ?", (step,))
    changed = _one_ulp_more(summary, index)
    _update(path, "UPDATE steps SET summary = ? WHERE step = ?", (changed, step))

    report = verify(path)
    assert not report.ok
    assert report.first_difference is not None
    assert f"step {step}:" in report.first_difference
    assert "DIFFERENT" in report.summary()
    # Reading the step re-executes and checks it against the changed summary.
    with Session(path) as session:
        with pytest.raises(SessionReproducibilityError, match=f"Step {step} of"):
            session.step_events(step)
        other = step - 1 if step else step + 1
        assert_same_events(session.step_events(other), sgd_run.live_step(other))


def test_verify_names_the_first_of_two_changed_steps(
    sgd_run: Run, tmp_path: Path
) -> None:
    path = copy_session(sgd_run, tmp_path)
    for step in (19, 8):
        (summary,) = _row(path, "SELECT summary FROM steps WHERE step = ?", (step,))
        changed = _one_ulp_more(summary, 0)
        _update(path, "UPDATE steps SET summary = ? WHERE step = ?", (changed, step))
    report = verify(path)
    assert report.first_difference is not None
    assert report.first_difference.startswith("step 8:")


def _array_data_offset(bundle: bytes) -> int:
    (n_header,) = struct.unpack_from("<I", bundle)
    return 4 + n_header


def _flip_keyframe_bit(path: Path, step: int, nth_byte: int) -> None:
    """Flip the lowest bit of one byte of the arrays of the keyframe of ``step``."""
    (state,) = _row(path, "SELECT state FROM keyframes WHERE step = ?", (step,))
    changed = bytearray(state)
    changed[_array_data_offset(state) + nth_byte] ^= 0x01
    _update(
        path, "UPDATE keyframes SET state = ? WHERE step = ?", (bytes(changed), step)
    )


# Byte 0 of a float64 is its last mantissa byte (a change of 1 ulp); byte 7
# holds its sign and exponent.  W0 of the 2-5-1 network is 80 bytes long.
KEYFRAME_BYTES = [(0, 0), (0, 7), (10, 5), (10, 79), (20, 7), (20, 60)]


@pytest.mark.parametrize(("step", "nth_byte"), KEYFRAME_BYTES)
def test_verify_names_the_keyframe_whose_byte_was_changed(
    sgd_run: Run, tmp_path: Path, step: int, nth_byte: int
) -> None:
    path = copy_session(sgd_run, tmp_path)
    _flip_keyframe_bit(path, step, nth_byte)
    report = verify(path)
    assert not report.ok
    assert report.first_difference is not None
    assert report.first_difference.startswith(f"keyframe of step {step}: W0[")


@pytest.mark.parametrize(("step", "nth_byte"), [(0, 7), (10, 79), (20, 7)])
def test_reading_a_step_from_a_changed_keyframe_raises(
    sgd_run: Run, tmp_path: Path, step: int, nth_byte: int
) -> None:
    path = copy_session(sgd_run, tmp_path)
    _flip_keyframe_bit(path, step, nth_byte)
    # Found by re-executing the step (its summary differs) or by checking the
    # keyframe itself; either way the message names the step.
    with Session(path) as session:
        with pytest.raises(
            (SessionReproducibilityError, SessionFormatError),
            match=rf"Step {step} of|keyframe of step {step}",
        ):
            session.step_events(step)


def test_reading_step_0_from_a_keyframe_changed_by_one_ulp_raises(
    sgd_run: Run, tmp_path: Path
) -> None:
    # W0[0, 0] of keyframe 0 is one ulp off: step 0 re-executes with the same
    # loss, gradient norms and update ratios (to the bit), so the summary check
    # passes and step_events(0) returns ParametersInitialized and every later
    # event with W0[0, 0] differing from the recorded run, without any error.
    path = copy_session(sgd_run, tmp_path)
    _flip_keyframe_bit(path, 0, 0)
    with Session(path) as session:
        try:
            got = session.step_events(0)
        except (SessionReproducibilityError, SessionFormatError):
            return
    where = first_difference(got, sgd_run.live_step(0))
    assert where is None, f"step_events(0) silently returned changed values: {where}"


def test_verify_names_the_epoch_whose_metrics_were_changed(
    sgd_run: Run, tmp_path: Path
) -> None:
    path = copy_session(sgd_run, tmp_path)
    (train,) = _row(path, "SELECT train FROM epochs WHERE epoch = 2")
    changed = train.replace('"loss":', '"loss":1', 1)
    assert changed != train
    _update(path, "UPDATE epochs SET train = ? WHERE epoch = 2", (changed,))
    report = verify(path)
    assert not report.ok
    assert report.first_difference is not None
    # Epoch 2 (0-based, as stored) is printed as epoch 3; it ends at step 11.
    assert "epoch 3 metrics" in report.first_difference


CHANGES = {
    "epoch_row_step": "UPDATE epochs SET step = step + 1 WHERE epoch = 2",
    "epoch_row_seq": "UPDATE epochs SET seq = seq + 1 WHERE epoch = 2",
    "step_row_epoch": "UPDATE steps SET epoch = epoch + 1 WHERE step = 5",
    "keyframe_seq": "UPDATE keyframes SET seq = seq + 1 WHERE step = 10",
    "end_step_count": (
        "UPDATE events SET body = replace(body, '\"steps\":24', '\"steps\":23') "
        "WHERE kind = 'session_ended'"
    ),
    "end_reason": (
        "UPDATE events SET body = replace(body, 'completed', 'stopped') "
        "WHERE kind = 'session_ended'"
    ),
}


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_verify_notices_every_changed_stored_value(
    sgd_run: Run, tmp_path: Path, what: str
) -> None:
    # verify promises that ok means "every stored value reproduced exactly";
    # these columns are read back by Session (epochs().step, series().epoch,
    # the session end) so a changed one must not pass as verified.
    path = copy_session(sgd_run, tmp_path)
    before = _dump(path)
    _update(path, CHANGES[what], ())
    assert _dump(path) != before
    try:
        report = verify(path)
    except (SessionFormatError, SessionReproducibilityError):
        return  # refused as damaged: also not passed
    assert not report.ok, f"verify passed a file whose {what} was changed"


# -- opening, closing, refusing to overwrite ----------------------------------


def test_a_file_can_be_opened_twice_at_once(sgd_run: Run) -> None:
    with Session(sgd_run.path) as a, Session(sgd_run.path) as b:
        assert a is not b
        assert_same_events(a.step_events(4), b.step_events(4))
        assert a.n_events == b.n_events == len(sgd_run.live)


def test_context_manager_returns_the_session_and_closes_it(sgd_run: Run) -> None:
    with Session(sgd_run.path) as session:
        assert isinstance(session, Session)
        assert session.title == "moons 2-5-1"
    with pytest.raises((sqlite3.ProgrammingError, SessionError)):
        session.series()

    with pytest.raises(RuntimeError, match="inside"):
        with Session(sgd_run.path) as session:
            raise RuntimeError("inside")
    with pytest.raises((sqlite3.ProgrammingError, SessionError)):
        session.series()


def test_reading_does_not_change_the_file(sgd_run: Run, tmp_path: Path) -> None:
    path = copy_session(sgd_run, tmp_path)
    before = path.read_bytes()
    with Session(path) as session:
        session.events()
        session.series()
        session.epochs()
        session.params_after(3)
    verify(path)
    assert path.read_bytes() == before


def test_recorder_refuses_an_existing_path_without_overwrite(
    sgd_run: Run, tmp_path: Path
) -> None:
    spec, config, data, kf = build_case("sgd_minibatch")
    path = copy_session(sgd_run, tmp_path)
    before = path.read_bytes()
    with pytest.raises(SessionError, match="already exists"):
        record(spec, config, data, path)
    with pytest.raises(SessionError, match="already exists"):
        Recorder(path, Trainer(spec, config, data))
    assert path.read_bytes() == before

    # A lone write-ahead log also counts as an existing session.
    lone = tmp_path / "lone.session"
    Path(f"{lone}-wal").write_bytes(b"")
    with pytest.raises(SessionError, match="already exists"):
        record(spec, config, data, lone)

    assert record(spec, config, data, path, overwrite=True) == "completed"
    with Session(path) as session:
        assert_same_events(session.events(), sgd_run.live)


def test_recorder_refuses_a_trainer_that_has_started_and_bad_intervals(
    tmp_path: Path,
) -> None:
    spec, config, data, kf = build_case("sgd_minibatch")
    trainer = Trainer(spec, config, data)
    trainer.begin()
    with pytest.raises(SessionError, match="has not started"):
        Recorder(tmp_path / "a.session", trainer)
    with pytest.raises(ValueError, match="keyframe_interval must be >= 1; got 0"):
        Recorder(
            tmp_path / "b.session", Trainer(spec, config, data), keyframe_interval=0
        )


def test_title_description_and_meta_are_stored(tmp_path: Path) -> None:
    spec, config, data, kf = build_case("gd_full_batch")
    path = tmp_path / "titled.session"
    record(
        spec, config, data, path, title="My run", description="notes",
        meta={"parent": "other.session", "fork_step": 4},
    )  # fmt: skip
    with Session(path) as session:
        assert session.title == "My run"
        assert session.meta["description"] == "notes"
        assert session.meta["parent"] == "other.session"
        assert session.meta["fork_step"] == 4
        assert session.meta["keyframe_interval"] == 10
        assert session.keyframe_interval == 10


def test_series_of_the_same_file_is_shared_read_only(
    sgd_run: Run, tmp_path: Path
) -> None:
    # The app opens one Session per user: a long run's series is kept once.
    copy = copy_session(sgd_run, tmp_path)
    with Session(sgd_run.path) as a, Session(sgd_run.path) as b, Session(copy) as c:
        sa, sb, sc = a.series(), b.series(), c.series()
        assert sa is sb is sc  # same content, even from another file
        assert not sa.loss.flags.writeable and not sa.step.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            sa.loss[0] = 1.0


def test_epochs_of_the_same_file_are_shared_read_only(
    sgd_run: Run, tmp_path: Path
) -> None:
    # Decoded once per process, not once per user (a long run has thousands).
    copy = copy_session(sgd_run, tmp_path)
    with Session(sgd_run.path) as a, Session(sgd_run.path) as b, Session(copy) as c:
        ea, eb, ec = a.epochs(), b.epochs(), c.epochs()
        assert ea is eb is ec
        assert ea is a.epochs()  # kept while no epoch is added
        for column in (ea.epoch, ea.step, *ea.train.values(), *ea.test.values()):
            assert not column.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            ea.train["loss"][0] = 1.0
        with pytest.raises(TypeError):
            ea.train["loss"] = np.zeros(3)  # type: ignore[index]


def test_epochs_of_files_with_other_metrics_are_not_shared(
    sgd_run: Run, tmp_path: Path
) -> None:
    path = copy_session(sgd_run, tmp_path)
    (train,) = _row(path, "SELECT train FROM epochs WHERE epoch = 1")
    changed = train.replace('{"loss":', '{"loss":1', 1)
    assert changed != train
    _update(path, "UPDATE epochs SET train = ? WHERE epoch = 1", (changed,))
    with Session(sgd_run.path) as a, Session(path) as b:
        ea, eb = a.epochs(), b.epochs()
        assert ea is not eb
        assert eb.train["loss"][1] != ea.train["loss"][1]
        assert np.array_equal(
            np.delete(eb.train["loss"], 1), np.delete(ea.train["loss"], 1)
        )


def test_step_index_of_an_ended_run_is_kept_once(sgd_run: Run, tmp_path: Path) -> None:
    # Every user's Session of a finished run reads the same step arrays.
    copy = copy_session(sgd_run, tmp_path)
    with Session(sgd_run.path) as a, Session(copy) as b:
        assert a._index.seq_first is b._index.seq_first
        assert a._index.n_events is b._index.n_events
        assert a._index.ok is b._index.ok
        assert_same_events(b.events(), a.events())


def test_epochs_of_a_file_still_being_written_grow_with_refresh(
    tmp_path: Path,
) -> None:
    spec, config, data, kf = build_case("adam")
    path = tmp_path / "growing.session"
    trainer = Trainer(spec, config, data)
    rec = Recorder(path, trainer, keyframe_interval=kf)
    trainer.begin()
    spe = trainer.steps_per_epoch
    for _ in range(2 * spe + 1):
        rec.before_step(trainer)
        trainer.train_step()
    rec.flush()
    with Session(path) as session:
        first = session.epochs()
        assert first.epoch.tolist() == [0, 1]
        assert first.step.tolist() == [spe - 1, 2 * spe - 1]
        trainer.run(before_step=rec.before_step)
        rec.close()
        session.refresh()
        grown = session.epochs()
        assert grown.epoch.tolist() == list(range(config.epochs))
        assert np.array_equal(grown.train["loss"][:2], first.train["loss"])
