"""The hash chain of a session file: intact as recorded, every edit found and placed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sessions.recorder
from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import Session, record, verify
from sessions.chain import ROW_TABLES, _step_row, _value, check_chain
from sessions.datasets import load_dataset
from sessions.library import SessionFolder, set_title
from sessions.schema import upgrade

FORMAT_1 = Path(__file__).parents[1] / "data" / "format1"
CHILD = Path(__file__).with_name("_record_child.py")


@pytest.fixture(scope="module")
def chained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Record a run committed after every step: one link per step.

    12 steps (3 epochs of 4), keyframes every 3 steps, Adam with dropout.
    """
    path = tmp_path_factory.mktemp("chain") / "linked.session"
    data = load_dataset("moons", n_samples=60, seed=1)
    spec = NetworkSpec(2, (LayerSpec(5, "tanh", dropout=0.2), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(
        loss="bce", optimizer="adam", lr=0.05, epochs=3, batch_size=12, seed=4
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sessions.recorder, "COMMIT_INTERVAL", 0.0)
        record(spec, config, data, path, keyframe_interval=3, title="chained")
    return path


def edited_copy(
    src: Path, tmp_path: Path, *statements: tuple[str, tuple[Any, ...]]
) -> Path:
    """Return a copy of ``src`` with SQL ``statements`` applied."""
    path = tmp_path / "edited.session"
    shutil.copy(src, path)
    con = sqlite3.connect(path)
    with con:
        for sql, args in statements:
            con.execute(sql, args)
    con.close()
    return path


def flip(blob: bytes, at: int) -> bytes:
    """Return ``blob`` with one bit of byte ``at`` (from the end if < 0) flipped."""
    b = bytearray(blob)
    b[at] ^= 1
    return bytes(b)


def link_of(path: Path, column: str, key: int) -> int:
    """Return the link whose ``column`` bound first goes past ``key``."""
    con = sqlite3.connect(path)
    (link,) = con.execute(
        f"SELECT min(link) FROM chain WHERE {column} > ?", (key,)
    ).fetchone()
    con.close()
    return int(link)


def chain_of(path: Path) -> Any:
    with Session(path) as session:
        return session.integrity()


def read(path: Path, sql: str, args: tuple[Any, ...] = ()) -> Any:
    con = sqlite3.connect(path)
    row = con.execute(sql, args).fetchone()
    con.close()
    return row


# -- as recorded -------------------------------------------------------------------


def test_a_recorded_session_has_an_intact_chain_of_one_link_per_commit(
    chained: Path,
) -> None:
    report = chain_of(chained)
    assert report.intact, report.text()
    with Session(chained) as session:
        assert session.n_steps == 12
    # Link 0, the keyframe of step 0 (committed before step 0 ran), one link
    # per step after it, and the close (the last step and the end).
    assert report.links == 14
    assert report.text() == "hash chain intact, 14 links"
    result = verify(chained)
    assert result.passed, result.summary()
    assert result.summary().splitlines()[0].endswith("hash chain intact, 14 links")


def test_a_diverging_run_with_stored_events_has_an_intact_chain(
    tmp_path: Path,
) -> None:
    data = load_dataset("xor", n_samples=40, seed=0)
    spec = NetworkSpec(2, (LayerSpec(4, "relu"), LayerSpec(1, "identity")))
    config = TrainingConfig(
        loss="mse", optimizer="sgd", lr=1e6, epochs=20, batch_size=8, seed=0
    )
    path = tmp_path / "diverged.session"
    assert record(spec, config, data, path) == "diverged"
    (n_events,) = read(path, "SELECT count(*) FROM events")
    assert n_events == 2  # training_diverged and session_ended
    assert chain_of(path).intact


def test_the_chain_is_what_the_format_page_says(chained: Path) -> None:
    # An independent reading of docs/session-format.md, without glassnet.
    def value(v: Any) -> bytes:
        if isinstance(v, int):
            return b"i" + struct.pack("<q", v)
        if isinstance(v, float):
            return b"f" + struct.pack("<d", v)
        raw = v.encode() if isinstance(v, str) else v
        tag = b"t" if isinstance(v, str) else b"b"
        return tag + struct.pack("<I", len(raw)) + raw

    def section(name: str, rows: list[tuple[Any, ...]]) -> bytes:
        out = value(name) + struct.pack("<q", len(rows))
        return out + b"".join(value(v) for row in rows for v in row)

    con = sqlite3.connect(chained)
    links = con.execute("SELECT * FROM chain ORDER BY link").fetchall()
    meta = con.execute(
        "SELECT key, value FROM meta WHERE key NOT IN ('title', 'description') "
        "ORDER BY key"
    ).fetchall()
    arrays = con.execute("SELECT name, bundle FROM arrays ORDER BY name").fetchall()
    digest = hashlib.sha256(
        bytes(32)
        + struct.pack("<5q", 0, 0, 0, 0, 0)
        + section("meta", meta)
        + section("arrays", arrays)
    ).digest()
    assert digest == links[0][5]
    tables = [
        ("keyframes", "step", "step, seq, state"),
        ("steps", "step", "*"),
        ("epochs", "epoch", "*"),
        ("events", "seq", "*"),
    ]
    prev = [0, 0, 0, 0]
    for link, *bounds, stored in links[1:]:
        body = struct.pack("<5q", link, *bounds)
        for (name, key, cols), lo, hi in zip(tables, prev, bounds, strict=True):
            rows = con.execute(
                f"SELECT {cols} FROM {name} WHERE {key} >= ? AND {key} < ? "
                f"ORDER BY {key}",
                (lo, hi),
            ).fetchall()
            body += section(name, rows)
        digest = hashlib.sha256(digest + body).digest()
        assert digest == stored, link
        prev = bounds
    con.close()


def test_the_fast_steps_encoding_is_the_general_one() -> None:
    rows = [
        (7, 1, 300, 41, "ok", bytes(range(48)), 1.5e9),
        (8, 1, 341, 3, "diverged", b"", float("nan")),
        (9, 1, 344, 41, "ok", "text where a blob belongs", 2),  # an edited row
        (-1, 2**62, None, 0, b"ok", b"\x00", -0.0),
    ]
    for row in rows:
        assert _step_row(row) == b"".join(map(_value, row))


# -- edits are found, and placed -----------------------------------------------------


def _steps_summary(path: Path) -> tuple[str, tuple[Any, ...]]:
    (blob,) = read(path, "SELECT summary FROM steps WHERE step = 7")
    return "UPDATE steps SET summary = ? WHERE step = 7", (flip(blob, -1),)


def _keyframe(path: Path) -> tuple[str, tuple[Any, ...]]:
    (blob,) = read(path, "SELECT state FROM keyframes WHERE step = 6")
    return "UPDATE keyframes SET state = ? WHERE step = 6", (flip(blob, -3),)


def _epoch_metric(path: Path) -> tuple[str, tuple[Any, ...]]:
    (text,) = read(path, "SELECT train FROM epochs WHERE epoch = 1")
    metrics = json.loads(text)
    metrics["loss"] = float(np.nextafter(metrics["loss"], np.inf))
    return "UPDATE epochs SET train = ? WHERE epoch = 1", (json.dumps(metrics),)


def _seed(path: Path) -> tuple[str, tuple[Any, ...]]:
    (text,) = read(path, "SELECT value FROM meta WHERE key = 'config'")
    config = json.loads(text)
    config["seed"] += 1
    return "UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),)


def _dataset(path: Path) -> tuple[str, tuple[Any, ...]]:
    (blob,) = read(path, "SELECT bundle FROM arrays WHERE name = 'dataset'")
    # The lowest byte of the first value of X_train, just after the header.
    (n,) = struct.unpack_from("<I", blob)
    return "UPDATE arrays SET bundle = ? WHERE name = 'dataset'", (flip(blob, 4 + n),)


def _recorded_at(path: Path) -> tuple[str, tuple[Any, ...]]:
    return "UPDATE steps SET recorded_at = recorded_at + 1 WHERE step = 7", ()


EDITS: dict[str, tuple[Callable[[Path], tuple[str, tuple[Any, ...]]], str, int]] = {
    # what: (the edit, the chain column placing it, the key it changed)
    "a summary byte": (_steps_summary, "steps_upto", 7),
    "a keyframe byte": (_keyframe, "keyframes_upto", 6),
    "an epoch metric": (_epoch_metric, "epochs_upto", 1),
    "the time a step was stored": (_recorded_at, "steps_upto", 7),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_an_edited_row_is_found_in_the_link_that_covers_it(
    chained: Path, tmp_path: Path, what: str
) -> None:
    edit, column, key = EDITS[what]
    path = edited_copy(chained, tmp_path, edit(chained))
    report = chain_of(path)
    assert report.edited, what
    link = link_of(chained, column, key)
    assert report.link == link
    assert report.text().startswith(f"edited after recording: link {link} (")
    assert report.text().endswith(") does not match")


def test_the_failing_link_names_the_rows_it_covers(
    chained: Path, tmp_path: Path
) -> None:
    path = edited_copy(chained, tmp_path, _steps_summary(chained))
    # Committed before every step: the link of step 7 holds step 7, which
    # ends epoch 2 (4 steps an epoch), and no keyframe (every 3 steps).
    link = link_of(chained, "steps_upto", 7)
    expected = f"link {link} (step 7, epoch 2 metrics) does not match"
    assert chain_of(path).problem == expected


@pytest.mark.parametrize("edit", [_seed, _dataset], ids=["seed", "dataset"])
def test_an_edited_seed_or_dataset_breaks_link_0(
    chained: Path, tmp_path: Path, edit: Callable[[Path], tuple[str, tuple[Any, ...]]]
) -> None:
    path = edited_copy(chained, tmp_path, edit(chained))
    with Session(path) as session:
        report = session.integrity()
    assert report.link == 0
    assert report.text() == (
        "edited after recording: link 0 (the metadata and the dataset) does not match"
    )
    result = verify(path) if edit is _seed else None
    if result is not None:
        assert result.edited and not result.passed


def test_an_edited_dataset_is_reported_by_verify_not_raised(
    chained: Path, tmp_path: Path
) -> None:
    path = edited_copy(chained, tmp_path, _dataset(chained))
    result = verify(path)
    assert result.edited
    assert result.first_difference is not None
    assert "does not match its recorded hash" in result.first_difference
    assert (
        result.summary()
        .splitlines()[0]
        .endswith("link 0 (the metadata and the dataset) does not match")
    )


def test_deleting_the_last_step_row_breaks_the_last_link(
    chained: Path, tmp_path: Path
) -> None:
    # Without its end too: a file whose end names a missing step is refused.
    path = edited_copy(
        chained,
        tmp_path,
        ("DELETE FROM steps WHERE step = 11", ()),
        ("DELETE FROM events WHERE kind = 'session_ended'", ()),
    )
    report = chain_of(path)
    assert report.edited
    assert report.link == link_of(chained, "steps_upto", 11)
    assert "step 11" in report.problem


def test_a_row_added_after_the_last_link_is_not_covered(
    chained: Path, tmp_path: Path
) -> None:
    insert = (
        "INSERT INTO steps SELECT step + 1, epoch, seq_first, n_events, status, "
        "summary, recorded_at FROM steps WHERE step = 11",
        (),
    )
    path = edited_copy(chained, tmp_path, insert)
    # The file no longer opens (step 12 is past the planned run); the chain
    # is checked on the bare file.
    con = sqlite3.connect(path)
    report = check_chain(con, 2)
    con.close()
    assert report.edited and report.link is None
    assert report.problem.startswith("step 12 not covered by the hash chain")


def test_deleting_the_last_link_leaves_its_rows_uncovered(
    chained: Path, tmp_path: Path
) -> None:
    path = edited_copy(chained, tmp_path, ("DELETE FROM chain WHERE link = 13", ()))
    report = chain_of(path)
    assert report.edited
    assert "step 11" in report.problem
    assert "stored events" in report.problem  # the end of the run
    assert "not covered by the hash chain" in report.problem


def test_deleting_a_link_in_the_middle_is_found(chained: Path, tmp_path: Path) -> None:
    path = edited_copy(chained, tmp_path, ("DELETE FROM chain WHERE link = 5", ()))
    report = chain_of(path)
    assert report.link == 5
    assert report.problem == "link 5 (a commit's rows) is missing"


def test_deleting_every_link_is_found(chained: Path, tmp_path: Path) -> None:
    path = edited_copy(chained, tmp_path, ("DELETE FROM chain", ()))
    assert chain_of(path).problem == "the hash chain is empty: its links were removed"


def test_renumbering_links_after_a_deleted_one_is_found(
    chained: Path, tmp_path: Path
) -> None:
    path = edited_copy(
        chained,
        tmp_path,
        ("DELETE FROM chain WHERE link = 5", ()),
        ("UPDATE chain SET link = link - 1 WHERE link > 5", ()),
    )
    report = chain_of(path)
    assert report.edited and report.link == 5


def test_swapping_two_links_is_found(chained: Path, tmp_path: Path) -> None:
    path = edited_copy(
        chained,
        tmp_path,
        ("UPDATE chain SET link = -1 WHERE link = 3", ()),
        ("UPDATE chain SET link = 3 WHERE link = 4", ()),
        ("UPDATE chain SET link = 4 WHERE link = -1", ()),
    )
    report = chain_of(path)
    assert report.link == 4
    assert report.problem == "link 4 is out of order: it ends before link 3"


def test_swapping_two_digests_is_found(chained: Path, tmp_path: Path) -> None:
    con = sqlite3.connect(chained)
    d3, d4 = (
        con.execute("SELECT digest FROM chain WHERE link = ?", (k,)).fetchone()[0]
        for k in (3, 4)
    )
    con.close()
    path = edited_copy(
        chained,
        tmp_path,
        ("UPDATE chain SET digest = ? WHERE link = 3", (d4,)),
        ("UPDATE chain SET digest = ? WHERE link = 4", (d3,)),
    )
    assert chain_of(path).link == 3


# -- what is not tampering ---------------------------------------------------------


def test_a_title_and_description_set_in_the_library_keep_the_chain(
    chained: Path, tmp_path: Path
) -> None:
    path = tmp_path / "renamed.session"
    shutil.copy(chained, path)
    set_title(path, "A new title", "A description written later")
    SessionFolder(tmp_path).set_title(path.name, "Another title")
    with Session(path) as session:
        assert session.title == "Another title"
        assert session.integrity().intact
    assert verify(path).passed


def test_a_file_killed_while_recording_has_an_intact_chain(tmp_path: Path) -> None:
    path, side = tmp_path / "killed.session", tmp_path / "killed.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), str(side), "7"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not (side.exists() and side.read_bytes().count(b"\n") >= 800):
            assert proc.poll() is None, "the recording child exited early"
            assert time.monotonic() < deadline, "the recording child is too slow"
            time.sleep(0.005)
        # While it records, the chain matches every committed step.
        with Session(path) as session:
            live = session.integrity()
            assert live.intact, live.text()
            assert session.status == "incomplete"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Session(path) as session:
        assert session.n_recorded > 0
        report = session.integrity()
        assert report.intact, report.text()
        assert report.links >= live.links


# -- format 1 ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["moons-momentum.session", "iris-adam.session"])
def test_a_format_1_file_has_no_chain_and_still_verifies(name: str) -> None:
    path = FORMAT_1 / name
    with Session(path) as session:
        report = session.integrity()
    assert report.state == "absent" and not report.edited
    assert report.text() == "no hash chain (format 1)"
    result = verify(path)
    assert result.passed, result.summary()
    assert result.summary().splitlines()[0].endswith(": no hash chain (format 1)")


def test_an_upgraded_format_1_file_gets_a_chain_from_then_on(tmp_path: Path) -> None:
    path = tmp_path / "upgraded.session"
    shutil.copy(FORMAT_1 / "iris-adam.session", path)
    con = sqlite3.connect(path)
    with con:
        upgrade(con, 1)
    con.close()
    assert chain_of(path).intact
    edited = edited_copy(path, tmp_path, _recorded_at(path))
    assert chain_of(edited).link == 1


def test_every_row_table_is_chained() -> None:
    # A table added to the schema must be chained (or named editable) here.
    from sessions.schema import SCHEMA

    chained_tables = {name for name, _, _ in ROW_TABLES}
    assert set(SCHEMA) == chained_tables | {"meta", "arrays", "chain"}


def test_a_failing_link_lists_its_few_keyframes_and_events(
    chained: Path, tmp_path: Path
) -> None:
    path = edited_copy(chained, tmp_path, _keyframe(chained))
    # Committed before step 6: step 5 and the keyframe of step 6.
    link = link_of(chained, "keyframes_upto", 6)
    assert chain_of(path).problem == (
        f"link {link} (keyframe of step 6, step 5) does not match"
    )
    (seq,) = read(chained, "SELECT seq FROM events WHERE kind = 'session_ended'")
    end = edited_copy(
        chained,
        tmp_path,
        ("UPDATE events SET body = body || ' ' WHERE seq = ?", (seq,)),
    )
    assert f"stored event {seq})" in chain_of(end).problem


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        (
            "UPDATE chain SET digest = 'x' WHERE link = 2",
            "link 2 holds no 32-byte digest",
        ),
        (
            "UPDATE chain SET steps_upto = 'many' WHERE link = 3",
            "link 3 holds bounds that are not whole numbers",
        ),
        (
            "UPDATE chain SET steps_upto = 1 WHERE link = 0",
            "link 0 claims rows; it covers only the metadata and dataset",
        ),
    ],
)
def test_a_malformed_link_is_reported_not_raised(
    chained: Path, tmp_path: Path, sql: str, problem: str
) -> None:
    path = edited_copy(chained, tmp_path, (sql, ()))
    report = chain_of(path)
    assert report.edited
    assert report.problem == problem
