"""Guides: instructors' stops with notes and questions, stored in the session."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine import events as ev
from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import Session, SessionError, SessionFormatError, record, verify
from sessions.datasets import load_dataset
from sessions.guide import (
    Question,
    Stop,
    answer_of,
    array_fields,
    check_answer,
    read_guide,
    write_guide,
)
from sessions.library import set_title


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("guide") / "run.session"
    record(
        NetworkSpec(2, (LayerSpec(3, "tanh"), LayerSpec(1, "sigmoid"))),
        TrainingConfig(loss="bce", optimizer="sgd", lr=0.5, epochs=3, batch_size=16),
        load_dataset("xor", n_samples=40, seed=0),
        path,
    )
    return path


@pytest.fixture
def run(recorded: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run.session"
    shutil.copy(recorded, copy)
    return copy


def _z_op(path: Path, step: int) -> int:
    with Session(path) as s:
        return next(
            i
            for i, e in enumerate(s.step_events(step))
            if isinstance(e, ev.WeightedSumComputed) and e.layer == 0
        )


def test_a_guide_is_written_read_back_and_keeps_the_chain(run: Path) -> None:
    op = _z_op(run, 2)
    stops = [
        Stop(0, 0, "The run starts: look at the initial weights."),
        Stop(2, op, "Predict the first unit's weighted sum.", Question("z", (1, 0))),
    ]
    write_guide(run, stops)
    with Session(run) as s:
        assert read_guide(s) == stops
        assert s.integrity().intact  # the guide is editable, like the title
        z = next(e for e in s.step_events(2) if isinstance(e, ev.WeightedSumComputed))
        assert answer_of(s, stops[1]) == z.z[1, 0]
        right, value = check_answer(s, stops[1], float(f"{z.z[1, 0]:.4g}"))
        assert right and value == z.z[1, 0]
        assert not check_answer(s, stops[1], z.z[1, 0] + 0.1)[0]
    set_title(run, "renamed")
    with Session(run) as s:
        assert read_guide(s) == stops
    assert verify(run).passed


@pytest.mark.parametrize(
    ("stop", "match"),
    [
        (Stop(99, 0, "x"), "step 99"),
        (Stop(0, 999, "x"), "operation 999"),
        (Stop(0, 0, "x" * 5000), "at most 4000"),
        (Stop(1, 0, "x", Question("z", (0, 0))), "does not compute"),
        (Stop(1, -1, "x"), "operation -1"),
    ],
)
def test_stops_that_do_not_fit_the_run_are_refused(
    run: Path, stop: Stop, match: str
) -> None:
    with pytest.raises(SessionError, match=match):
        write_guide(run, [stop])
    with Session(run) as s:
        assert read_guide(s) == []


def test_a_question_about_an_entry_outside_the_array_is_refused(run: Path) -> None:
    op = _z_op(run, 1)
    with pytest.raises(
        SessionError, match=r"entry \[16, 0\] of z, whose shape is \[16, 3\]"
    ):
        write_guide(run, [Stop(1, op, "x", Question("z", (16, 0)))])


def test_a_guide_edited_by_hand_into_nonsense_is_refused_on_reading(run: Path) -> None:
    con = sqlite3.connect(run)
    with con:
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('guide', ?)",
            ('[{"step": 1, "op": 0, "note": "<script>x</script>", "question": 7}]',),
        )
    con.close()
    with Session(run) as s, pytest.raises(SessionFormatError, match="guide"):
        read_guide(s)


def test_the_fields_a_question_may_ask_about(run: Path) -> None:
    with Session(run) as s:
        events = s.step_events(0)
    z = next(e for e in events if isinstance(e, ev.WeightedSumComputed))
    fields = array_fields(z)
    assert set(fields) == {"a_prev", "W", "b", "z"}
    assert fields["z"] == z.z.shape
    batch = next(e for e in events if isinstance(e, ev.BatchSampled))
    assert "indices" not in array_fields(batch)  # whole numbers, not a computation
    assert np.issubdtype(batch.indices.dtype, np.integer)
