"""The corpus of nasty session files, and hypothesis mutating a real session.

``tests/data/nasty_sessions/`` holds small files made by
``tests/data/make_nasty_sessions.py`` (listed with a description in its
``INDEX.tsv``): other kinds of file renamed, cut-short and bit-flipped files,
other format versions, huge declared shapes, SQL and markup in text fields.
Each must open, or be refused with `SessionError` naming the problem; nothing
else may happen: no other exception, no write to the file, nothing run from
it, and (checked in a child process with a capped address space) no large
allocation. ``test_hostile_files.py`` tests the same kinds by hand, one by
one; here hypothesis also draws the damage: byte flips, truncation, garbage,
rows and metadata edited with sqlite3.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sessions import Session, SessionError, verify
from sessions.library import describe_session

pytestmark = pytest.mark.timeout(300)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "nasty_sessions"
MAKER = CORPUS.parent / "make_nasty_sessions.py"
MUTATIONS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def corpus() -> list[tuple[str, str, str]]:
    """Return (file, expected, description) for every line of INDEX.tsv."""
    lines = (CORPUS / "INDEX.tsv").read_text().splitlines()
    rows = [tuple(line.split("\t")) for line in lines if not line.startswith("#")]
    assert all(len(r) == 3 for r in rows), "INDEX.tsv lines are file, expected, text"
    return rows  # type: ignore[return-value]


def read_all(path: Path) -> str | None:
    """Open ``path``, read every part of it, verify it; return why it was refused.

    Returns None when the file reads completely and verifies. Any exception
    other than `SessionError` propagates and fails the test.
    """
    try:
        with Session(path) as session:
            _ = (session.title, session.status, session.n_events, repr(session))
            session.series()
            session.epochs()
            _ = session.dataset
            for step in range(session.n_steps):
                session.step_events(step)
                session.params_after(step)
            if session.n_events:
                session.last()
            session.integrity()  # the hash chain check reads every row too
        report = verify(path)
    except SessionError as err:
        message = str(err)
        assert len(message.strip()) > 20, f"{type(err).__name__}: {message!r}"
        return message
    return None if report.ok else f"verify: {report.summary()}"


def read_untouched(path: Path) -> str | None:
    """Like `read_all`, and check the library listing and that nothing was written."""
    before = path.read_bytes() if path.is_file() else None
    info = describe_session(path)
    assert isinstance(info.damaged, str | type(None))
    outcome = read_all(path)
    if path.is_file():
        assert path.read_bytes() == before, f"reading {path.name} changed the file"
    for suffix in ("-wal", "-journal"):
        side = Path(f"{path}{suffix}")
        assert not side.exists() or side.stat().st_size == 0, f"{side.name} written"
    return outcome


# -- the corpus -------------------------------------------------------------------


def test_the_corpus_is_listed_and_small() -> None:
    strays = sorted(
        p.name for p in CORPUS.iterdir() if p.name.endswith(("-wal", "-shm"))
    )
    assert not strays, f"a reader opened the corpus in place: {strays}"
    files = {p.name for p in CORPUS.glob("*.session")}
    listed = {row[0] for row in corpus()}
    assert files == listed, f"unlisted {files - listed}, missing {listed - files}"
    assert len(listed) >= 40
    for name, _, description in corpus():
        assert description.strip(), f"{name} has no description"
        assert (CORPUS / name).stat().st_size < 200_000, f"{name} is not small"


@pytest.mark.parametrize(
    ("name", "expected", "description"), corpus(), ids=[r[0] for r in corpus()]
)
def test_each_nasty_file_opens_or_is_refused_clearly(
    tmp_path: Path, name: str, expected: str, description: str
) -> None:
    # A copy, so that a reader that wrote to the file could not spoil the corpus.
    path = tmp_path / name
    shutil.copyfile(CORPUS / name, path)
    outcome = read_untouched(path)
    if expected == "opens":
        if outcome is not None and "format" in outcome:
            pytest.fail(
                f"{name} ({description}) is refused as another format: {outcome}. "
                f"If the session format changed, run {MAKER.name} again."
            )
        assert outcome is None, f"{name} ({description}): {outcome}"
        return
    words = expected.removeprefix("refused:")
    assert outcome is not None, f"{name} ({description}) was read as if it were fine"
    assert words.lower() in outcome.lower(), f"{name}: {outcome}"
    assert name in outcome or "step" in outcome.lower() or "verify" in outcome


@pytest.mark.parametrize("name", ["sql-in-title.session", "markup-in-title.session"])
def test_code_in_text_fields_comes_back_as_the_same_text(
    tmp_path: Path, name: str
) -> None:
    # A copy: SQLite leaves -wal and -shm files beside a WAL file it opens.
    path = tmp_path / name
    shutil.copyfile(CORPUS / name, path)
    with Session(path) as session:
        title, description = session.title, session.meta["description"]
    assert title == description
    assert "DROP TABLE" in title or "<script>" in title
    # The library lists it with the same text, as text.
    assert describe_session(path).title == title


def test_the_whole_corpus_reads_in_bounded_memory(tmp_path: Path) -> None:
    # SQLite's and NumPy's allocations are not seen by tracemalloc: cap the
    # child's address space instead. A file that made the reader allocate
    # what it declares (8 TB, 10^400) would end in MemoryError here.
    for row in corpus():
        shutil.copyfile(CORPUS / row[0], tmp_path / row[0])
    code = textwrap.dedent(
        f"""
        import resource, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import test_nasty_sessions as t
        resource.setrlimit(resource.RLIMIT_AS, ({3 << 30}, {3 << 30}))
        start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for path in sorted(Path({str(tmp_path)!r}).glob("*.session")):
            t.read_untouched(path)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start
        print("grown_kib", grown)
        """
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    grown = int(result.stdout.split("grown_kib")[-1])
    assert grown < 200 * 1024, f"reading the corpus grew the process by {grown} KiB"


def test_the_corpus_maker_still_knows_every_file() -> None:
    # The maker's list and INDEX.tsv agree: the corpus is what the script makes.
    source = MAKER.read_text()
    for name, expected, _ in corpus():
        if name != "base.session":
            assert json.dumps(name) in source, f"{name} is not made by {MAKER.name}"
            assert json.dumps(expected) in source, f"{name}: {expected!r}"


# -- hypothesis: damage drawn at random ------------------------------------------------


@functools.cache
def _base() -> bytes:
    """Return the bytes of the corpus's intact session."""
    return (CORPUS / "base.session").read_bytes()


def _read_mutant(path: Path) -> None:
    """Read a damaged file as `read_untouched` does, counting the outcomes."""
    event("refused" if read_untouched(path) is not None else "read in full")


def _write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "mutant.session"
    for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        extra.unlink(missing_ok=True)
    path.write_bytes(content)
    return path


@MUTATIONS
@given(st.data())
def test_drawn_byte_flips_are_refused_or_harmless(
    tmp_path: Path, data: st.DataObject
) -> None:
    base_bytes = _base()
    n = len(base_bytes)
    flips = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 255)), max_size=12)
    )
    content = bytearray(base_bytes)
    for position, mask in flips:
        content[position] ^= mask
    _read_mutant(_write(tmp_path, bytes(content)))


@MUTATIONS
@given(st.data())
def test_drawn_truncations_and_tails_are_refused_or_harmless(
    tmp_path: Path, data: st.DataObject
) -> None:
    base_bytes = _base()
    cut = data.draw(st.integers(0, len(base_bytes)))
    tail = data.draw(st.binary(max_size=600))
    _read_mutant(_write(tmp_path, base_bytes[:cut] + tail))


#: Values a tamperer might store in any column: each SQLite type, at its edges.
HOSTILE_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 1, 2**31, 2**62]),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "'); DROP TABLE steps; --",
            "<script>alert(1)</script>",
            '{"kind": "session_ended"}',
            "[" * 3000,
            "{}",
            "null",
        ]
    ),
    st.binary(max_size=40),
    st.sampled_from([struct.pack("<I", 1 << 31), struct.pack("<I", 5) + b"[[[[["]),
)

COLUMNS = {
    "steps": ["step", "epoch", "seq_first", "n_events", "status", "summary"],
    "keyframes": ["step", "seq", "state"],
    "epochs": ["epoch", "step", "seq", "train", "test"],
    "events": ["seq", "kind", "body"],
    "arrays": ["name", "bundle"],
    "meta": ["key", "value"],
}


def _tables(path: Path) -> dict[str, list[str]]:
    """Return the tables of the file that this test knows, with their columns."""
    con = sqlite3.connect(path)
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        return {
            table: [
                c
                for c in columns
                if c in {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
            ]
            for table, columns in COLUMNS.items()
            if table in names
        }
    finally:
        con.close()


def _edit(path: Path, statement: str, args: tuple[Any, ...]) -> bool:
    """Run one edit as a tamperer would; False if SQLite itself refuses it."""
    con = sqlite3.connect(path)
    try:
        with con:
            con.execute(statement, args)
        event("edit made")
        return True
    except sqlite3.DatabaseError:
        event("edit refused by SQLite")
        return False  # e.g. a NOT NULL or UNIQUE constraint of the schema
    finally:
        con.close()


@MUTATIONS
@given(st.data())
def test_drawn_row_edits_are_refused_or_harmless(
    tmp_path: Path, data: st.DataObject
) -> None:
    path = _write(tmp_path, _base())
    tables = _tables(path)
    for _ in range(data.draw(st.integers(1, 3))):
        table = data.draw(st.sampled_from(sorted(tables)))
        column = data.draw(st.sampled_from(tables[table]))
        value = data.draw(HOSTILE_VALUES)
        which = data.draw(st.integers(0, 8))
        _edit(
            path,
            f"UPDATE {table} SET {column} = ? WHERE rowid = "
            f"(SELECT rowid FROM {table} LIMIT 1 OFFSET {which})",
            (value,),
        )
    _read_mutant(path)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "n_in",
                    "layers",
                    "n_out",
                    "activation",
                    "lr",
                    "epochs",
                    "optimizer",
                    "seed",
                    "name",
                    "task",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),  # fmt: skip
    max_leaves=12,
)


@MUTATIONS
@given(st.data())
def test_drawn_metadata_is_refused_or_harmless(
    tmp_path: Path, data: st.DataObject
) -> None:
    path = _write(tmp_path, _base())
    con = sqlite3.connect(path)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()
    key = data.draw(st.sampled_from(sorted(meta)))
    original = json.loads(meta[key])
    if isinstance(original, dict) and data.draw(st.booleans()):
        # Change one field of a dict (network, config, dataset) and keep the rest.
        field = data.draw(st.sampled_from(sorted(original) or ["x"]))
        original[field] = data.draw(JSON)
        value = json.dumps(original)
    else:
        value = json.dumps(data.draw(JSON))
    _edit(path, "UPDATE meta SET value = ? WHERE key = ?", (value, key))
    _read_mutant(path)


@MUTATIONS
@given(st.data())
def test_drawn_keyframe_headers_are_refused_or_harmless(
    tmp_path: Path, data: st.DataObject
) -> None:
    path = _write(tmp_path, _base())
    con = sqlite3.connect(path)
    try:
        steps = [r[0] for r in con.execute("SELECT step FROM keyframes")]
        step = data.draw(st.sampled_from(steps))
        (blob,) = con.execute(
            "SELECT state FROM keyframes WHERE step = ?", (step,)
        ).fetchone()
    finally:
        con.close()
    (n,) = struct.unpack_from("<I", blob)
    header, payload = json.loads(blob[4 : 4 + n]), blob[4 + n :]
    entry = data.draw(st.sampled_from(header["arrays"]))
    key = data.draw(st.sampled_from(["name", "dtype", "shape", "offset"]))
    entry[key] = data.draw(
        JSON
        | st.lists(st.integers(-1, 2**64), max_size=4)
        | st.sampled_from(["<f8", "<f4", "|O", ">f8", "<i8", "<U3", "|b1"])
    )
    text = json.dumps(header).encode()
    blob = struct.pack("<I", len(text)) + text + payload
    _edit(path, "UPDATE keyframes SET state = ? WHERE step = ?", (blob, step))
    _read_mutant(path)


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of the tables this test edits, in file order."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            table: con.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in COLUMNS
        }
    finally:
        con.close()


@MUTATIONS
@given(st.data())
def test_a_row_edit_is_named_by_the_hash_chain_or_refused(
    tmp_path: Path, data: st.DataObject
) -> None:
    # Reading may succeed after an edit (not every stored value is re-checked
    # on opening); the hash chain must then say the file was edited, unless
    # only the title, description or guide changed, which users may edit.
    path = _write(tmp_path, _base())
    before = _rows(path)
    tables = _tables(path)
    table = data.draw(st.sampled_from(sorted(tables)))
    column = data.draw(st.sampled_from(tables[table]))
    which = data.draw(st.integers(0, 3))
    _edit(
        path,
        f"UPDATE {table} SET {column} = ? WHERE rowid = "
        f"(SELECT rowid FROM {table} LIMIT 1 OFFSET {which})",
        (data.draw(HOSTILE_VALUES),),
    )
    after = _rows(path)
    editable = {"title", "description", "guide"}
    changed = [
        (table, old, new)
        for table in COLUMNS
        for old, new in zip(before[table], after[table], strict=False)
        if old != new
    ] + [(t, None, None) for t in COLUMNS if len(before[t]) != len(after[t])]
    if not changed or all(t == "meta" and old[0] in editable for t, old, _ in changed):
        return
    try:
        with Session(path) as session:
            report = session.integrity()
    except SessionError as err:
        assert len(str(err)) > 20
        event("refused on opening")
        return
    event("named by the chain")
    assert not report.intact, f"edit of {changed[:1]} not seen: {report}"
    assert report.problem
