"""Chain every stored row of a session with SHA-256, so later edits show.

Link 0 covers the metadata (except the entries users may edit later, see
:data:`EDITABLE_META`) and the dataset; each commit of the recorder appends a
link covering the rows it added.  ``docs/session-format.md`` defines the bytes
hashed, so the chain can be checked without glassnet.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EDITABLE_META",
    "ChainReport",
    "ChainWriter",
    "check_chain",
    "link_bytes",
    "write_chain",
]

EDITABLE_META = frozenset({"title", "description", "guide"})
"""Metadata entries the app edits in place; the chain leaves them out."""

ROW_TABLES: tuple[tuple[str, str, str], ...] = (
    ("keyframes", "step", "step, seq, state"),
    ("steps", "step", "step, epoch, seq_first, n_events, status, summary, recorded_at"),
    ("epochs", "epoch", "epoch, step, seq, train, test"),
    ("events", "seq", "seq, step, kind, body"),
)
"""The tables a link covers: name, key column, columns in the order hashed."""

DIGEST_BYTES = 32
_ZERO = bytes(DIGEST_BYTES)
_Q = struct.Struct("<q")
_D = struct.Struct("<d")
_L = struct.Struct("<I")
_HEADER = struct.Struct("<5q")


@dataclass(frozen=True)
class ChainReport:
    """Say whether a session's hash chain matches its rows.

    ``state`` is ``intact`` (every row is covered by a link and every link
    matches), ``edited`` (``problem`` says the first thing that does not
    match, ``link`` names the link when one is to blame) or ``absent`` (a
    format 1 file, which has no chain).
    """

    state: str
    links: int
    problem: str = ""
    link: int | None = None

    @property
    def intact(self) -> bool:
        """Return True when the chain covers every row and matches it."""
        return self.state == "intact"

    @property
    def edited(self) -> bool:
        """Return True when the file was changed after recording."""
        return self.state == "edited"

    def text(self) -> str:
        """Return one line for a person to read."""
        if self.state == "intact":
            return f"hash chain intact, {self.links} links"
        if self.state == "absent":
            return self.problem
        return f"edited after recording: {self.problem}"


class ChainWriter:
    """Compute the links of a session as the recorder writes its rows.

    The recorder inserts each returned link row into ``chain`` in the same
    transaction as the rows it covers.
    """

    def __init__(self) -> None:
        self.link = 0
        self.digest = _ZERO
        self.upto = [0, 0, 0, 0]

    def first(
        self, meta: Sequence[tuple[str, str]], arrays: Sequence[tuple[str, bytes]]
    ) -> tuple[Any, ...]:
        """Return link 0: the metadata rows (key, JSON text) and the arrays rows."""
        sections = _header_sections(sorted(meta), sorted(arrays))
        digest = hashlib.sha256(_ZERO + link_bytes(0, [0, 0, 0, 0], sections))
        return (0, 0, 0, 0, 0, digest.digest())

    def next(self, rows: Sequence[Sequence[tuple[Any, ...]]]) -> tuple[Any, ...] | None:
        """Return the link covering new rows of each of :data:`ROW_TABLES`.

        ``rows`` holds one list per table, each in increasing key order and
        following the rows of the earlier links.  Returns None when there is
        nothing new.  The writer moves on only when :meth:`accept` is given
        the link (once it is committed).
        """
        if not any(rows):
            return None
        upto = [
            table[-1][0] + 1 if table else old
            for table, old in zip(rows, self.upto, strict=True)
        ]
        sections = [
            _section(name, table)
            for (name, _, _), table in zip(ROW_TABLES, rows, strict=True)
        ]
        link = self.link + 1
        digest = hashlib.sha256(self.digest + link_bytes(link, upto, sections))
        return (link, *upto, digest.digest())

    def accept(self, row: tuple[Any, ...]) -> None:
        """Continue the chain after ``row``, a link returned and committed."""
        self.link = row[0]
        self.upto = list(row[1:5])
        self.digest = row[5]


def link_bytes(link: int, upto: Sequence[int], sections: Sequence[bytes]) -> bytes:
    """Return the bytes a link hashes after the previous digest.

    The link number and its four ``*_upto`` bounds as little-endian int64,
    then the sections (each: table name, row count, rows).
    """
    return _HEADER.pack(link, *upto) + b"".join(sections)


def check_chain(con: sqlite3.Connection, version: int) -> ChainReport:
    """Recompute a session's hash chain from its rows and compare.

    Reads in one read transaction, so a file still being recorded is
    checked as of one commit.  Stops at the first link that does not match;
    then reports rows that no link covers (added after recording, or their
    link removed).

    Raises
    ------
    sqlite3.DatabaseError
        If the file cannot be read.
    """
    if version < 2:
        return ChainReport("absent", 0, "no hash chain (format 1)")
    con.execute("BEGIN")
    try:
        return _check(con)
    finally:
        con.execute("ROLLBACK")


# -- canonical bytes -------------------------------------------------------------


def _value(v: Any) -> bytes:
    """Return one column value as tagged bytes (type tag, then its bytes)."""
    t = type(v)
    if t is int:
        return b"i" + _Q.pack(v)
    if t is float:
        return b"f" + _D.pack(v)
    if t is str:
        text = v.encode()
        return b"t" + _L.pack(len(text)) + text
    if t is bytes:
        return b"b" + _L.pack(len(v)) + v
    if v is None:
        return b"n"
    msg = f"a session row holds a value of type {t.__name__}, which SQLite never gives"
    raise TypeError(msg)


def _section(name: str, rows: Sequence[Sequence[Any]]) -> bytes:
    """Return a table's section: its name, the row count, each row's values."""
    parts = [_value(name), _Q.pack(len(rows))]
    if name == "steps":
        parts.extend(map(_step_row, rows))
    else:
        for row in rows:
            parts.extend(map(_value, row))
    return b"".join(parts)


_STEP_TYPES = (int, int, int, int, str, bytes, float)
_STEP_HEAD = struct.Struct("<cqcqcqcqcI")
_BLOB_HEAD = struct.Struct("<cI")
_FLOAT = struct.Struct("<cd")


def _step_row(row: Sequence[Any]) -> bytes:
    """Return ``b"".join(map(_value, row))`` of a steps row, twice as fast.

    Steps are most of a session's rows; a row of other types (an edited
    file) takes the general path.
    """
    if tuple(map(type, row)) != _STEP_TYPES:
        return b"".join(map(_value, row))
    step, epoch, seq_first, n_events, status, summary, recorded_at = row
    text = status.encode()
    return b"".join(
        (
            _STEP_HEAD.pack(
                b"i",
                step,
                b"i",
                epoch,
                b"i",
                seq_first,
                b"i",
                n_events,
                b"t",
                len(text),
            ),
            text,
            _BLOB_HEAD.pack(b"b", len(summary)),
            summary,
            _FLOAT.pack(b"f", recorded_at),
        )
    )


def _header_sections(
    meta: Sequence[tuple[str, str]], arrays: Sequence[tuple[str, bytes]]
) -> list[bytes]:
    """Return link 0's sections: the metadata rows hashed, then the arrays rows.

    Both come sorted by key (SQLite's ``ORDER BY``: UTF-8 byte order).
    """
    kept = [(k, v) for k, v in meta if k not in EDITABLE_META]
    return [_section("meta", kept), _section("arrays", arrays)]


# -- checking --------------------------------------------------------------------


def _check(con: sqlite3.Connection) -> ChainReport:
    links = con.execute(
        "SELECT link, keyframes_upto, steps_upto, epochs_upto, events_upto, digest "
        "FROM chain ORDER BY link"
    ).fetchall()
    n = len(links)
    if not links:
        return ChainReport(
            "edited", 0, "the hash chain is empty: its links were removed"
        )
    problem = _link_table_problem(links)
    if problem is not None:
        return ChainReport("edited", n, problem[1], problem[0])

    # Link 0: metadata and dataset.
    meta = con.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
    arrays = con.execute("SELECT name, bundle FROM arrays ORDER BY name").fetchall()
    zeros = [0, 0, 0, 0]
    digest = hashlib.sha256(
        _ZERO + link_bytes(0, zeros, _header_sections(meta, arrays))
    ).digest()
    if digest != links[0][5]:
        return ChainReport(
            "edited", n, "link 0 (the metadata and the dataset) does not match", 0
        )

    # Rows with a negative key come before every link.
    for name, key, _ in ROW_TABLES:
        if con.execute(f"SELECT 1 FROM {name} WHERE {key} < 0 LIMIT 1").fetchone():
            return ChainReport(
                "edited", n, f"the {name} table holds rows no link covers"
            )

    # Links 1..n-1: each reads its rows of each table by key range.
    queries = [
        f"SELECT {cols} FROM {name} WHERE {key} >= ? AND {key} < ? ORDER BY {key}"
        for name, key, cols in ROW_TABLES
    ]
    for i in range(1, n):
        lo, upto = links[i - 1][1:5], links[i][1:5]
        sections = [
            _section(name, con.execute(sql, (a, b)).fetchall() if b > a else [])
            for (name, _, _), sql, a, b in zip(
                ROW_TABLES, queries, lo, upto, strict=True
            )
        ]
        digest = hashlib.sha256(digest + link_bytes(i, upto, sections)).digest()
        if digest != links[i][5]:
            covers = _covers(con, lo, upto)
            return ChainReport("edited", n, f"link {i} ({covers}) does not match", i)

    # Rows after the last link.
    extra = _uncovered(con, links[-1][1:5])
    if extra:
        return ChainReport(
            "edited",
            n,
            f"{extra} not covered by the hash chain (added after recording, "
            "or their link removed)",
        )
    return ChainReport("intact", n)


def _rows(
    con: sqlite3.Connection, name: str, key: str, cols: str
) -> Iterator[tuple[Any, ...]]:
    """Yield a table's rows with a key from 0 up, in key order."""
    yield from con.execute(f"SELECT {cols} FROM {name} WHERE {key} >= 0 ORDER BY {key}")


def _link_table_problem(links: list[tuple[Any, ...]]) -> tuple[int, str] | None:
    """Return (link, what is wrong) if the links are not numbered and ordered."""
    prev: tuple[Any, ...] = (0, 0, 0, 0)
    for i, row in enumerate(links):
        number, upto, digest = row[0], row[1:5], row[5]
        if number != i:
            what = "the metadata and the dataset" if i == 0 else "a commit's rows"
            return i, f"link {i} ({what}) is missing"
        if not (isinstance(digest, bytes) and len(digest) == DIGEST_BYTES):
            return i, f"link {i} holds no {DIGEST_BYTES}-byte digest"
        if not all(type(u) is int for u in upto):
            return i, f"link {i} holds bounds that are not whole numbers"
        if i == 0 and any(upto):
            return 0, "link 0 claims rows; it covers only the metadata and dataset"
        if any(u < p for u, p in zip(upto, prev, strict=True)):
            return i, f"link {i} is out of order: it ends before link {i - 1}"
        prev = upto
    return None


def _covers(con: sqlite3.Connection, lo: Sequence[int], hi: Sequence[int]) -> str:
    """Return which rows a link with bounds ``lo`` .. ``hi`` covers, in words.

    Keyframes and stored events are sparse: a few are listed by key.
    """
    parts = []
    for (name, key, _), a, b in zip(ROW_TABLES, lo, hi, strict=True):
        if b <= a:
            continue
        if name in ("keyframes", "events"):
            keys = [
                int(k)
                for (k,) in con.execute(
                    f"SELECT {key} FROM {name} WHERE {key} >= ? AND {key} < ? "
                    f"ORDER BY {key} LIMIT 5",
                    (a, b),
                )
            ]
            if 0 < len(keys) < 5:
                one = len(keys) == 1
                if name == "keyframes":
                    what = "keyframe of step" if one else "keyframes of steps"
                else:
                    what = "stored event" if one else "stored events"
                parts.append(f"{what} {', '.join(map(str, keys))}")
                continue
        parts.append(_describe(name, a, b - 1))
    return ", ".join(parts) or "no rows"


def _describe(name: str, first: int, last: int) -> str:
    """Return rows ``first`` .. ``last`` of a table in words."""
    span = str(first) if first == last else f"{first}..{last}"
    if name == "steps":
        return f"step {span}" if first == last else f"steps {span}"
    if name == "keyframes":
        return f"keyframes of steps {span}"
    if name == "epochs":
        one = f"{first + 1}" if first == last else f"{first + 1}..{last + 1}"
        return f"epoch {one} metrics" if first == last else f"epochs {one} metrics"
    return f"stored events {span}"


def _uncovered(con: sqlite3.Connection, upto: Sequence[int]) -> str:
    """Return the rows at or after the last link's bounds, in words ('' if none)."""
    parts = []
    for (name, key, _), hi in zip(ROW_TABLES, upto, strict=True):
        count, first, last = con.execute(
            f"SELECT count(*), min({key}), max({key}) FROM {name} WHERE {key} >= ?",
            (hi,),
        ).fetchone()
        if count:
            parts.append(_describe(name, int(first), int(last)))
    return ", ".join(parts)


def write_chain(con: sqlite3.Connection) -> int:
    """Write a chain covering a file's rows as they are now; return its links.

    For a file upgraded from format 1, which was recorded without one: link 0,
    then one link over every row.
    """
    writer = ChainWriter()
    meta = con.execute("SELECT key, value FROM meta").fetchall()
    arrays = con.execute("SELECT name, bundle FROM arrays").fetchall()
    links = [writer.first(meta, arrays)]
    writer.accept(links[0])
    rows = [list(_rows(con, name, key, cols)) for name, key, cols in ROW_TABLES]
    link = writer.next(rows)
    if link is not None:
        links.append(link)
    con.executemany("INSERT INTO chain VALUES (?, ?, ?, ?, ?, ?)", links)
    return len(links)
