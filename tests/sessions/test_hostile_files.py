"""Untrusted files: whatever a ``.session`` file holds, glassnet fails cleanly.

Opening or reading a file that is not a session, is damaged, or was altered on
purpose may only end in :class:`SessionFormatError`, or in
:class:`SessionReproducibilityError` when a stored value was changed so that
the run no longer reproduces; the message says what is wrong.  No other
exception, no hang, no large allocation, and nothing unpickled or evaluated.

The nasty files are generated in ``tmp_path`` from one small recorded session
(36 KB, nine SQLite pages), so they always follow the current format.
"""

from __future__ import annotations

import ast
import json
import os
import random
import sqlite3
import struct
import subprocess
import sys
import textwrap
import traceback
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import engine
import sessions
from engine import LayerSpec, NetworkSpec, TrainingConfig
from engine import events as ev
from sessions import (
    FORMAT_VERSION,
    Session,
    SessionFormatError,
    SessionReproducibilityError,
    record,
    verify,
)
from sessions.codec import encode_bundle
from sessions.datasets import load_dataset
from sessions.schema import APPLICATION_ID

pytestmark = pytest.mark.timeout(120)

ALLOWED = (SessionFormatError, SessionReproducibilityError)
N_STEPS = 6


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a small, intact session: 6 steps, keyframes every 2, dropout, Adam."""
    path = tmp_path_factory.mktemp("good") / "good.session"
    data = load_dataset("moons", n_samples=20, seed=0)
    spec = NetworkSpec(2, (LayerSpec(3, "tanh", dropout=0.2), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(
        loss="bce", optimizer="adam", lr=0.05, epochs=3, batch_size=8
    )
    assert record(spec, config, data, path, keyframe_interval=2) == "completed"
    return path


def copy_of(good: Path, tmp_path: Path, name: str = "bad.session") -> Path:
    """Return a copy of the intact session to damage."""
    out = tmp_path / name
    out.write_bytes(good.read_bytes())
    return out


def read_everything(path: Path) -> str | None:
    """Open ``path`` and read every part of it, then verify it.

    Returns None when everything could be read, else the message of the
    allowed error that stopped it; any other exception propagates.
    """
    try:
        with Session(path) as session:
            _ = (session.title, session.status, session.n_events, repr(session))
            session.series()
            session.epochs()
            _ = session.dataset
            for step in range(min(session.n_steps, N_STEPS + 2)):
                session.step_events(step)
            if session.n_events:
                session.last()
                session.events(-5)
            session.state_before(0)
        report = verify(path)
    except ALLOWED as err:
        message = str(err)
        assert message.strip(), f"{type(err).__name__} without a message"
        return message
    if not report.ok:
        # A clean "this file does not reproduce" is a refusal too.
        assert report.first_difference, "verify failed without saying where"
        return report.summary()
    return None


def what_it_says(path: Path) -> tuple[Any, ...]:
    """Return what a session file tells a reader: status, steps, events, series."""
    with Session(path) as session:
        events = session.events()
        return (
            session.status,
            session.n_recorded,
            session.n_events,
            [(e.seq, e.kind) for e in events],
            session.series().loss.tobytes(),
            sorted(session.epochs().train),
        )


def assert_refused(path: Path, match: str) -> str:
    """Fail unless reading ``path`` ends in an allowed error matching ``match``."""
    message = read_everything(path)
    assert message is not None, f"{path.name} was read as if it were fine"
    assert match.lower() in message.lower(), message
    return message


def assert_schema_refusal(path: Path, match: str) -> str:
    """Fail unless ``path`` is refused by the schema check, with its own words.

    The schema check's message must reach the user as it is, not wrapped in
    "unreadable metadata ... the file is damaged", which would send a user
    with a file from a newer glassnet looking for damage.
    """
    message = assert_refused(path, match)
    assert message.startswith(f"{path} "), message
    assert "unreadable metadata" not in message, message
    return message


def sql(path: Path, *statements: str, args: tuple[Any, ...] = ()) -> None:
    """Run statements on a session file as a tamperer would, with sqlite3."""
    con = sqlite3.connect(path)
    try:
        with con:
            for statement in statements:
                con.execute(statement, args if "?" in statement else ())
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def set_meta(path: Path, key: str, value_json: str) -> None:
    """Replace one metadata value by the raw JSON text ``value_json``."""
    sql(path, "UPDATE meta SET value = ? WHERE key = ?", args=(value_json, key))


def meta_value(path: Path, key: str) -> Any:
    """Return one metadata value, parsed."""
    con = sqlite3.connect(path)
    try:
        (text,) = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    finally:
        con.close()
    return json.loads(text)


# -- files that are not sessions at all --------------------------------------


def _png() -> bytes:
    """Return a valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00\xff")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "is empty"),
        (b"step,loss\n0,0.5\n1,0.4\n", "not an SQLite file"),
        ("ein Sitzungsprotokoll \u2603\n".encode(), "not an SQLite file"),
        (_png(), "not an SQLite file"),
        (b"SQLite format 3", "not an SQLite file"),  # one byte short of the magic
        (b"SQLite format 3\x00", "damaged"),  # the magic and nothing else
        (b"SQLite format 3\x00" + bytes(84), "damaged"),
        (b"SQLite format 3\x00" + os.urandom(4080), "damaged"),
    ],
    ids=["empty", "csv", "text", "png", "magic-short", "magic-only", "header", "noise"],
)
def test_a_file_that_is_not_a_session_is_refused(
    tmp_path: Path, content: bytes, match: str
) -> None:
    path = tmp_path / "x.session"
    path.write_bytes(content)
    message = assert_refused(path, match)
    assert str(path) in message


def test_a_missing_file_a_folder_and_a_fifo_are_refused_without_waiting(
    tmp_path: Path,
) -> None:
    assert_refused(tmp_path / "missing.session", "does not exist")
    folder = tmp_path / "folder.session"
    folder.mkdir()
    assert_refused(folder, "not a file")
    # Opening a FIFO for reading would wait for a writer forever.
    fifo = tmp_path / "fifo.session"
    os.mkfifo(fifo)
    assert_refused(fifo, "not a file")


def test_an_sqlite_file_that_is_not_a_glassnet_session_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.session"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE steps (step INTEGER, loss REAL)")
    con.execute("INSERT INTO steps VALUES (0, 0.5)")
    con.commit()
    con.close()
    assert_schema_refusal(path, "not a glassnet session")


def test_a_file_with_the_glassnet_id_but_no_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hollow.session"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute("PRAGMA user_version = 1")
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.commit()
    con.close()
    assert_schema_refusal(path, "lacks the tables")


# -- truncation and bit flips ------------------------------------------------------


@pytest.mark.parametrize("percent", [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99])
def test_a_truncated_session_is_refused(
    good: Path, tmp_path: Path, percent: int
) -> None:
    data = good.read_bytes()
    path = tmp_path / "cut.session"
    path.write_bytes(data[: len(data) * percent // 100])
    message = read_everything(path)
    # A file cut short may only be read if it still says all that was recorded;
    # otherwise it must be refused as damaged, not shown as a different run.
    if message is None:
        assert what_it_says(path) == what_it_says(good), (
            f"cut at {percent}%, the file reads without error as another run"
        )
    elif percent:
        assert "damaged" in message or "truncated" in message, message


def test_a_session_missing_its_last_byte_is_refused(good: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.session"
    path.write_bytes(good.read_bytes()[:-1])
    message = read_everything(path)
    if message is None:
        assert what_it_says(path) == what_it_says(good)


_PACKAGES = (str(Path(sessions.__file__).parent), str(Path(engine.__file__).parent))


def _where(err: BaseException) -> str:
    """Return the innermost glassnet lines an exception passed through."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if f.filename.startswith(_PACKAGES)] or frames
    return " > ".join(
        f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno}"
        for f in ours[-2:]
    )


def _flip_and_read(good: Path, tmp_path: Path, positions: list[tuple[int, int]]) -> Any:
    """Flip one bit at each (byte, bit) in a fresh copy; return what went wrong.

    Returns the flips that raised an exception other than the allowed ones,
    with the exception, and how many flips were refused or read fine.
    """
    data = good.read_bytes()
    bad: list[str] = []
    refused = read_fine = 0
    path = tmp_path / "flipped.session"
    for byte, bit in positions:
        changed = bytearray(data)
        changed[byte] ^= 1 << bit
        path.write_bytes(bytes(changed))
        try:
            outcome = read_everything(path)
        except Exception as err:  # noqa: BLE001 - every other exception is a failure
            bad.append(f"byte {byte} bit {bit}: {_where(err)}: {err!r}"[:300])
            continue
        refused += outcome is not None
        read_fine += outcome is None
    return bad, refused, read_fine


def test_bit_flips_in_the_sqlite_header_are_refused_or_harmless(
    good: Path, tmp_path: Path
) -> None:
    positions = [(byte, bit) for byte in range(100) for bit in (0, 7)]
    bad, refused, _ = _flip_and_read(good, tmp_path, positions)
    assert not bad, "\n".join(bad[:15])
    assert refused > 20


def test_random_bit_flips_anywhere_are_refused_or_harmless(
    good: Path, tmp_path: Path
) -> None:
    rng = random.Random(1234)
    size = good.stat().st_size
    positions = [(rng.randrange(100, size), rng.randrange(8)) for _ in range(400)]
    bad, refused, read_fine = _flip_and_read(good, tmp_path, positions)
    assert not bad, f"{len(bad)} of {len(positions)} flips:\n" + "\n".join(bad[:20])
    assert refused > 10 and read_fine > 10


def _page_of(path: Path, table: str) -> int:
    """Return the first byte of the root page of ``table``."""
    con = sqlite3.connect(path)
    try:
        (root,) = con.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        (page_size,) = con.execute("PRAGMA page_size").fetchone()
    finally:
        con.close()
    return (root - 1) * page_size


@pytest.mark.parametrize("table", ["meta", "keyframes", "steps", "epochs", "events"])
def test_bit_flips_in_each_table_are_refused_or_harmless(
    good: Path, tmp_path: Path, table: str
) -> None:
    # Flip bits in the used end of the table's root page, where SQLite keeps
    # the cells (record headers giving each value's type and length, then the
    # values); every byte of the last 40, and a seeded sample of the rest.
    start = _page_of(good, table)
    page = good.read_bytes()[start : start + 4096]
    end = start + len(page.rstrip(b"\x00"))
    first = max(start + 8, end - 1500)
    rng = random.Random(table)
    positions = [(byte, rng.randrange(8)) for byte in range(end - 40, end)]
    positions += [(rng.randrange(first, end), rng.randrange(8)) for _ in range(200)]
    bad, _, _ = _flip_and_read(good, tmp_path, positions)
    assert not bad, f"{len(bad)} of {len(positions)} flips:\n" + "\n".join(bad[:20])


def test_a_garbage_write_ahead_log_beside_the_file_is_ignored_or_refused(
    good: Path, tmp_path: Path
) -> None:
    path = copy_of(good, tmp_path)
    Path(f"{path}-wal").write_bytes(random.Random(5).randbytes(20_000))
    assert read_everything(path) is None


# -- altered structure ---------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("CREATE TABLE notes (text TEXT)", "table notes"),
        ("CREATE VIEW recent AS SELECT * FROM steps WHERE step > 2", "view recent"),
        (
            "CREATE TRIGGER spy AFTER INSERT ON steps BEGIN "
            "INSERT INTO meta VALUES ('x', '1'); END",
            "trigger spy",
        ),
        ("CREATE INDEX by_epoch ON steps (epoch)", "index by_epoch"),
    ],
    ids=["table", "view", "trigger", "index"],
)
def test_a_session_with_objects_glassnet_never_writes_is_refused(
    good: Path, tmp_path: Path, statement: str, name: str
) -> None:
    path = copy_of(good, tmp_path)
    sql(path, statement)
    message = assert_schema_refusal(path, "holds objects glassnet never writes")
    assert name in message


def test_a_session_from_a_future_glassnet_is_refused(
    good: Path, tmp_path: Path
) -> None:
    path = copy_of(good, tmp_path)
    sql(path, f"PRAGMA user_version = {FORMAT_VERSION + 1}")
    message = assert_schema_refusal(path, f"uses session format {FORMAT_VERSION + 1}")
    assert "Upgrade glassnet" in message


@pytest.mark.parametrize("version", [0, -1])
def test_a_session_format_that_never_existed_is_refused(
    good: Path, tmp_path: Path, version: int
) -> None:
    path = copy_of(good, tmp_path)
    sql(path, f"PRAGMA user_version = {version}")
    assert_schema_refusal(path, f"declares session format {version}")


def test_a_session_without_a_needed_metadata_key_is_refused(
    good: Path, tmp_path: Path
) -> None:
    for key in ("network", "config", "keyframe_interval"):
        path = copy_of(good, tmp_path, f"{key}.session")
        sql(path, "DELETE FROM meta WHERE key = ?", args=(key,))
        assert key in assert_refused(path, "metadata")


# -- hostile metadata -------------------------------------------------------------


def test_a_huge_metadata_value_is_refused_unread(good: Path, tmp_path: Path) -> None:
    path = copy_of(good, tmp_path)
    huge = json.dumps("x" * (17 << 20))
    sql(path, "UPDATE meta SET value = ? WHERE key = 'description'", args=(huge,))
    tracemalloc.start()
    try:
        message = assert_refused(path, "oversized metadata entry 'description'")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(path) in message
    assert peak < 4 << 20, f"reading allocated {peak} bytes"


@pytest.mark.parametrize("depth", [10_000, 200_000])
def test_deeply_nested_metadata_is_refused(
    good: Path, tmp_path: Path, depth: int
) -> None:
    # 200 000 nested lists are 400 KB of JSON, far below the size limit; the
    # JSON parser gives up with RecursionError, which must become a format error.
    path = copy_of(good, tmp_path)
    set_meta(path, "description", "[" * depth + "]" * depth)
    message = assert_refused(path, "")
    assert str(path) in message, f"the message does not say which file: {message}"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("network", '"a network"'),
        ("network", "[1, 2, 3]"),
        ("network", '{"n_in": 2, "layers": []}'),
        ("network", '{"n_in": -2, "layers": [{"n_out": 1}]}'),
        ("network", '{"n_in": 2, "layers": [{"n_out": 1, "activation": "evil"}]}'),
        ("network", '{"n_in": 2, "layers": [{"n_out": 1, "__class__": 1}]}'),
        ("config", '{"lr": -1}'),
        ("config", '{"optimizer": "__import__"}'),
        ("config", '{"epochs": 1e400}'),
        ("config", "null"),
        ("keyframe_interval", '"ten"'),
        ("keyframe_interval", "null"),
        ("dataset", '"iris"'),
        ("dataset", "{}"),
        ("format_version", "NaN"),
        ("network", "{not json"),
    ],
)
def test_metadata_of_the_wrong_kind_is_refused(
    good: Path, tmp_path: Path, key: str, value: str
) -> None:
    path = copy_of(good, tmp_path)
    set_meta(path, key, value)
    message = read_everything(path)
    # format_version must agree with user_version (see test_format_version.py).
    assert message is not None


@pytest.mark.parametrize("value", ["0", "-3", "true"])
def test_an_impossible_keyframe_interval_is_refused(
    good: Path, tmp_path: Path, value: str
) -> None:
    path = copy_of(good, tmp_path)
    set_meta(path, "keyframe_interval", value)
    assert read_everything(path) is not None


def test_verify_compares_every_stored_keyframe_whatever_the_interval_says(
    good: Path, tmp_path: Path
) -> None:
    # Keyframe 2 is one ulp off and the interval claims keyframes are rare:
    # the keyframe is still stored and read from, so verify must check it.
    path = copy_of(good, tmp_path)
    con = sqlite3.connect(path)
    (blob,) = con.execute("SELECT state FROM keyframes WHERE step = 2").fetchone()
    con.close()
    (n,) = struct.unpack_from("<I", blob)
    changed = bytearray(blob)
    changed[4 + n] ^= 1
    _set_keyframe(path, bytes(changed), 2)
    set_meta(path, "keyframe_interval", str(10**9))
    try:
        report = verify(path)
    except ALLOWED:
        return  # refused as damaged: also not passed
    assert not report.ok, "verify skipped a stored keyframe"


def test_a_changed_learning_rate_no_longer_reproduces(
    good: Path, tmp_path: Path
) -> None:
    path = copy_of(good, tmp_path)
    config = meta_value(path, "config")
    config["lr"] = 0.06
    set_meta(path, "config", json.dumps(config))
    with Session(path) as session:
        with pytest.raises(SessionReproducibilityError, match="does not reproduce"):
            session.step_events(0)
        with pytest.raises(SessionReproducibilityError, match="Step 3 of"):
            session.step_events(3)
    report = verify(path)
    assert not report.ok
    assert report.first_difference is not None
    assert report.first_difference.startswith("step 0:")


def test_a_changed_seed_no_longer_reproduces(good: Path, tmp_path: Path) -> None:
    path = copy_of(good, tmp_path)
    config = meta_value(path, "config")
    config["seed"] = 1
    set_meta(path, "config", json.dumps(config))
    report = verify(path)
    assert not report.ok
    assert report.first_difference is not None
    assert "keyframe of step 0" in report.first_difference


def test_a_changed_dataset_description_fails_its_hash(
    good: Path, tmp_path: Path
) -> None:
    path = copy_of(good, tmp_path)
    described = meta_value(path, "dataset")
    described["name"] = "iris"
    set_meta(path, "dataset", json.dumps(described))
    assert_refused(path, "does not match its recorded hash")


def test_a_wider_network_than_the_keyframes_is_refused(
    good: Path, tmp_path: Path
) -> None:
    # The metadata says 4 hidden units, the keyframes hold weights for 3.
    path = copy_of(good, tmp_path)
    network = meta_value(path, "network")
    network["layers"][0]["n_out"] = 4
    set_meta(path, "network", json.dumps(network))
    assert not verify(path).ok
    with Session(path) as session:
        assert session.spec.sizes == (2, 4, 1)
        try:
            events = session.step_events(0)
        except ALLOWED:
            return
    shapes = [e.W.shape for e in events if isinstance(e, ev.ParametersInitialized)]
    pytest.fail(f"step 0 of a 2-4-1 network was read with weights of shapes {shapes}")


def _run_with_memory_limit(code: str, limit_bytes: int) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python whose address space is capped."""
    prelude = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({limit_bytes}, {limit_bytes}))
        """
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_network_declared_enormous_is_refused_without_allocating(
    good: Path, tmp_path: Path
) -> None:
    # Two hidden layers of a million units: W1 alone would be 10^12 floats
    # (8 TB).  Re-running from the seed must refuse, not try to allocate.
    path = copy_of(good, tmp_path)
    network = meta_value(path, "network")
    network["layers"][0]["n_out"] = 10**6
    network["layers"].insert(1, dict(network["layers"][0]))
    set_meta(path, "network", json.dumps(network))
    result = _run_with_memory_limit(
        f"""
        from sessions import SessionFormatError, SessionReproducibilityError, verify
        try:
            verify({str(path)!r})
        except (SessionFormatError, SessionReproducibilityError) as err:
            print("refused:", err)
        else:
            print("read")
        """,
        limit_bytes=3 << 30,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("refused:"), result.stdout


# -- hostile bundles (keyframes and the dataset) --------------------------------


def _bundle(entries: list[dict[str, Any]], payload: bytes, extra: Any = None) -> bytes:
    header = json.dumps({"arrays": entries, "extra": extra}).encode()
    return struct.pack("<I", len(header)) + header + payload


def _keyframe_extra(path: Path, step: int = 0) -> Any:
    con = sqlite3.connect(path)
    try:
        (blob,) = con.execute(
            "SELECT state FROM keyframes WHERE step = ?", (step,)
        ).fetchone()
    finally:
        con.close()
    (n,) = struct.unpack_from("<I", blob)
    return json.loads(blob[4 : 4 + n])


def _set_keyframe(path: Path, blob: bytes, step: int = 0) -> None:
    sql(path, "UPDATE keyframes SET state = ? WHERE step = ?", args=(blob, step))


def _set_dataset(path: Path, blob: bytes) -> None:
    sql(path, "UPDATE arrays SET bundle = ? WHERE name = 'dataset'", args=(blob,))


HUGE_SHAPES = [
    [10**12],
    [10**6, 10**6],
    [2**31, 2**31, 2**31],
    [1 << 64],
    [10**400],
]


@pytest.mark.parametrize("shape", HUGE_SHAPES, ids=lambda s: "x".join(map(str, s))[:20])
@pytest.mark.parametrize("where", ["keyframe", "dataset"])
def test_a_bundle_declaring_a_huge_array_is_refused_without_allocating(
    good: Path, tmp_path: Path, shape: list[int], where: str
) -> None:
    path = copy_of(good, tmp_path)
    entries = [{"name": "W0", "dtype": "<f8", "shape": shape, "offset": 0}]
    if where == "keyframe":
        header = _keyframe_extra(path)
        header["arrays"][0]["shape"] = shape
        _set_keyframe(path, _bundle(header["arrays"], bytes(64), header["extra"]))
    else:
        entries[0]["name"] = "X_train"
        _set_dataset(path, _bundle(entries, bytes(64)))
    tracemalloc.start()
    try:
        with Session(path) as session:
            with pytest.raises(SessionFormatError, match="refuses arrays above"):
                session.step_events(0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"refusing it allocated {peak} bytes"


BAD_ENTRIES = [
    ({"name": "W0", "dtype": "|O", "shape": [2, 3], "offset": 0}, "only"),
    ({"name": "W0", "dtype": "<U8", "shape": [2, 3], "offset": 0}, "only"),
    ({"name": "W0", "dtype": ">f8", "shape": [2, 3], "offset": 0}, "only"),
    ({"name": "W0", "dtype": None, "shape": [2, 3], "offset": 0}, "only"),
    ({"name": "W0", "dtype": "<f8", "shape": [-2, 3], "offset": 0}, "invalid shape"),
    ({"name": "W0", "dtype": "<f8", "shape": [2.0, 3], "offset": 0}, "invalid shape"),
    ({"name": "W0", "dtype": "<f8", "shape": [True, 3], "offset": 0}, "invalid shape"),
    ({"name": "W0", "dtype": "<f8", "shape": "2,3", "offset": 0}, "invalid shape"),
    ({"name": "W0", "dtype": "<f8", "shape": None, "offset": 0}, "invalid shape"),
    ({"name": "W0", "dtype": "<f8", "shape": [2, 3], "offset": -8}, "does not fit"),
    ({"name": "W0", "dtype": "<f8", "shape": [2, 3], "offset": 10**9}, "does not fit"),
    ({"name": "W0", "dtype": "<f8", "shape": [2, 3], "offset": "0"}, "does not fit"),
    ({"name": "W0", "dtype": "<f8", "shape": [2, 30], "offset": 0}, "does not fit"),
    ({"name": "W0", "dtype": "<f8", "shape": [1] * 100, "offset": 0}, "W0"),
    ({"dtype": "<f8", "shape": [2, 3], "offset": 0}, "without a name"),
    ({"name": 7, "dtype": "<f8", "shape": [2, 3], "offset": 0}, "without a name"),
    ("W0", "without a name"),
]


@pytest.mark.parametrize(("entry", "match"), BAD_ENTRIES)
@pytest.mark.parametrize("where", ["keyframe", "dataset"])
def test_a_bundle_entry_that_makes_no_sense_is_refused(
    good: Path, tmp_path: Path, entry: Any, match: str, where: str
) -> None:
    path = copy_of(good, tmp_path)
    payload = bytes(64)
    if where == "keyframe":
        header = _keyframe_extra(path)
        header["arrays"][0] = entry
        _set_keyframe(path, _bundle(header["arrays"], payload, header["extra"]))
    else:
        if isinstance(entry, dict) and entry.get("name") == "W0":
            entry = {**entry, "name": "X_train"}
            match = "X_train" if match == "W0" else match
        _set_dataset(path, _bundle([entry], payload))
    assert_refused(path, match)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x01\x00",
        struct.pack("<I", 1 << 31) + b"{}",
        struct.pack("<I", 2) + b"{}",  # no array list
        struct.pack("<I", 4) + b"null",
        struct.pack("<I", 2) + b"[]",
        struct.pack("<I", 3) + b"\xff\xfe{",
        struct.pack("<I", 14) + b'{"arrays": 5}',
        struct.pack("<I", 5) + b"[[[[[",
        struct.pack("<I", 200_000) + b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=[
        "empty", "short", "huge-header", "no-arrays", "null", "list", "not-utf8",
        "arrays-not-list", "bad-json", "deep-json",
    ],
)  # fmt: skip
@pytest.mark.parametrize("where", ["keyframe", "dataset"])
def test_a_bundle_with_a_broken_header_is_refused(
    good: Path, tmp_path: Path, blob: bytes, where: str
) -> None:
    path = copy_of(good, tmp_path)
    if where == "keyframe":
        _set_keyframe(path, blob)
    else:
        _set_dataset(path, blob)
    assert read_everything(path) is not None


def test_a_keyframe_with_transposed_weights_is_refused(
    good: Path, tmp_path: Path
) -> None:
    # Right number of values, wrong shape: the network cannot use them.
    path = copy_of(good, tmp_path)
    con = sqlite3.connect(path)
    (blob,) = con.execute("SELECT state FROM keyframes WHERE step = 2").fetchone()
    con.close()
    (n,) = struct.unpack_from("<I", blob)
    header = json.loads(blob[4 : 4 + n])
    w0 = next(e for e in header["arrays"] if e["name"] == "W0")
    assert w0["shape"] == [2, 3]
    w0["shape"] = [3, 2]
    _set_keyframe(path, _bundle(header["arrays"], blob[4 + n :], header["extra"]), 2)
    with Session(path) as session:
        with pytest.raises(ALLOWED):
            session.step_events(2)


@pytest.mark.parametrize(
    "dropout_rng",
    [
        None,
        "PCG64",
        {"bit_generator": "MT19937", "state": {"key": [0] * 624, "pos": 0}},
        {"bit_generator": "PCG64", "state": {}},
        {"bit_generator": "PCG64", "state": {"state": "x", "inc": 1}},
        {"bit_generator": "os.system", "state": {"state": 1, "inc": 1}},
    ],
    ids=["none", "string", "mt19937", "empty-state", "bad-state", "evil-name"],
)
def test_a_keyframe_with_a_bad_dropout_generator_is_refused(
    good: Path, tmp_path: Path, dropout_rng: Any
) -> None:
    path = copy_of(good, tmp_path)
    con = sqlite3.connect(path)
    (blob,) = con.execute("SELECT state FROM keyframes WHERE step = 0").fetchone()
    con.close()
    (n,) = struct.unpack_from("<I", blob)
    header = json.loads(blob[4 : 4 + n])
    header["extra"]["dropout_rng"] = dropout_rng
    _set_keyframe(path, _bundle(header["arrays"], blob[4 + n :], header["extra"]))
    with Session(path) as session:
        with pytest.raises(ALLOWED):
            session.step_events(0)


def test_a_keyframe_that_claims_another_step_does_not_reproduce(
    good: Path, tmp_path: Path
) -> None:
    path = copy_of(good, tmp_path)
    header = _keyframe_extra(path, 2)
    con = sqlite3.connect(path)
    (blob,) = con.execute("SELECT state FROM keyframes WHERE step = 2").fetchone()
    con.close()
    (n,) = struct.unpack_from("<I", blob)
    header["extra"]["step"] = 4
    _set_keyframe(path, _bundle(header["arrays"], blob[4 + n :], header["extra"]), 2)
    with Session(path) as session:
        with pytest.raises(ALLOWED):
            session.step_events(2)


def test_a_dataset_bundle_of_the_wrong_shape_is_refused(
    good: Path, tmp_path: Path
) -> None:
    path = copy_of(good, tmp_path)
    arrays = {
        "X_train": np.zeros(16),  # 1-D
        "y_train": np.zeros((16, 1)),
        "X_test": np.zeros((4, 2)),
        "y_test": np.zeros((4, 1)),
    }
    _set_dataset(path, encode_bundle(arrays))
    assert_refused(path, "dataset")


# -- hostile rows --------------------------------------------------------------------


STEP_ROW_CHANGES = {
    "summary-short": "UPDATE steps SET summary = x'0011' WHERE step = 1",
    "summary-text": "UPDATE steps SET summary = 'loss' WHERE step = 1",
    "summary-int": "UPDATE steps SET summary = 7 WHERE step = 1",
    "summary-null-like": "UPDATE steps SET summary = x'' WHERE step = 1",
    "gap": "UPDATE steps SET step = 40 WHERE step = 5",
    "far-gap": "UPDATE steps SET step = 1000000000000 WHERE step = 5",
    "negative-step": "UPDATE steps SET step = -1 WHERE step = 0",
    "seq-first-text": "UPDATE steps SET seq_first = 'x' WHERE step = 2",
    "seq-first-huge": "UPDATE steps SET seq_first = 9000000000000000000 WHERE step = 5",
    "n-events-negative": "UPDATE steps SET n_events = -5 WHERE step = 2",
    "status-odd": "UPDATE steps SET status = 'weird' WHERE step = 2",
    "epoch-text": "UPDATE steps SET epoch = 'first' WHERE step = 2",
    "recorded-at-text": "UPDATE steps SET recorded_at = 'noon' WHERE step = 2",
    "keyframe-text": "UPDATE keyframes SET state = 'a keyframe' WHERE step = 2",
    "keyframe-int": "UPDATE keyframes SET state = 12 WHERE step = 2",
    "keyframe-gone": "DELETE FROM keyframes WHERE step = 0",
    "epoch-json-broken": "UPDATE epochs SET train = '{\"loss\": 0.5' WHERE epoch = 1",
    "epoch-json-list": "UPDATE epochs SET train = '[1, 2]' WHERE epoch = 1",
    "epoch-json-text": 'UPDATE epochs SET train = \'{"loss": "low"}\' WHERE epoch = 1',
    "epoch-json-deep": "UPDATE epochs SET test = '"
    + "[" * 100_000
    + "]" * 100_000
    + "' WHERE epoch = 1",
    "end-json-broken": "UPDATE events SET body = '{' WHERE kind = 'session_ended'",
    "end-kind-evil": "UPDATE events SET body = "
    '\'{"kind": "batch_sampled", "seq": 1}\' WHERE kind = \'session_ended\'',
    "end-fields-extra": "UPDATE events SET body = replace(body, '}', ',\"x\":1}') "
    "WHERE kind = 'session_ended'",
    "end-seq-text": 'UPDATE events SET body = replace(body, \'"seq":\', \'"seq":"\') '
    "WHERE kind = 'session_ended'",
    "dataset-gone": "DELETE FROM arrays",
    "dataset-text": "UPDATE arrays SET bundle = 'the data'",
}


@pytest.mark.parametrize("change", sorted(STEP_ROW_CHANGES))
def test_a_row_changed_to_nonsense_is_refused(
    good: Path, tmp_path: Path, change: str
) -> None:
    path = copy_of(good, tmp_path)
    sql(path, STEP_ROW_CHANGES[change])
    assert read_everything(path) is not None


# -- text that looks like code ------------------------------------------------------


HOSTILE_TEXT = [
    "'); DROP TABLE steps; --",
    '" OR 1=1; --',
    "<script>alert('x')</script><img src=x onerror=alert(1)>",
    "{{7*7}} ${7*7} %(x)s {0.__class__}",
    "line one\nline two\r\n\x1b[31mred\x1b[0m\x00nul",
    "\u202egnp.exe \U0001f600",
]


@pytest.mark.parametrize("text", HOSTILE_TEXT, ids=range(len(HOSTILE_TEXT)))
def test_sql_and_html_in_the_title_are_plain_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "titled.session"
    data = load_dataset("xor", n_samples=20, seed=0)
    spec = NetworkSpec(2, (LayerSpec(2, "tanh"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(loss="bce", optimizer="sgd", epochs=1, batch_size=8)
    record(spec, config, data, path, title=text, description=text)
    with Session(path) as session:
        assert session.title == text
        assert session.meta["description"] == text
        assert session.n_steps == 2
    assert verify(path).ok


# -- nothing is unpickled or evaluated ------------------------------------------------


_UNSAFE_MODULES = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
_UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}


def _calls_and_imports(source: str) -> list[str]:
    """Return what a module imports or calls that could run stored data as code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            found += [n for n in names if n.split(".")[0] in _UNSAFE_MODULES]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _UNSAFE_BUILTINS:
                found.append(func.id)
            if isinstance(func, ast.Attribute) and func.attr in (
                "enable_load_extension",
                "load_extension",
            ):
                found.append(func.attr)
            for kw in node.keywords:
                # np.save(..., allow_pickle=False) refuses objects: allowed.
                refuses = isinstance(kw.value, ast.Constant) and kw.value.value is False
                if kw.arg == "allow_pickle" and not refuses:
                    found.append("allow_pickle")
    return found


def test_the_sessions_package_never_unpickles_or_evaluates() -> None:
    package = Path(sessions.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) >= 8
    found = {}
    for module in modules:
        source = module.read_text()
        hits = _calls_and_imports(source)
        if hits:
            found[str(module.relative_to(package))] = hits
    assert not found, found


def test_the_meta_test_would_catch_pickle_and_eval() -> None:
    sample = (
        "import pickle\nx = eval('1')\nnp.load(f, allow_pickle=True)\n"
        "re.compile('x')\ncon.enable_load_extension(True)\n"
        "np.save(f, a, allow_pickle=False)\n"
    )
    found = _calls_and_imports(sample)
    assert sorted(found) == ["allow_pickle", "enable_load_extension", "eval", "pickle"]
