"""Write the corpus of nasty session files in tests/data/nasty_sessions/.

Run from the repository root: ``.venv/bin/python tests/data/make_nasty_sessions.py``.
It records one tiny session (XOR, 2-2-1, 2 epochs of 2 steps) and derives every
nasty file from it: cut short, bit-flipped, from another format version, with
huge declared shapes, with SQL or markup in its text, or another kind of file
renamed to ``.session``. ``INDEX.tsv`` lists each file with what reading it
must give (``refused`` plus words of the message, or ``opens``) and a
one-line description. ``tests/sessions/test_nasty_sessions.py`` reads them all.

Run it again after a change of the session format; the files are small
(about 1 MB in all), so they are kept in the repository as they are.
"""

from __future__ import annotations

import inspect
import io
import json
import random
import sqlite3
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine import LayerSpec, NetworkSpec, TrainingConfig  # noqa: E402
from sessions import record  # noqa: E402
from sessions.datasets import load_dataset  # noqa: E402

OUT = Path(__file__).resolve().parent / "nasty_sessions"

#: Text that looks like code, for titles and names: SQL, markup, templates.
SQL = "'); DROP TABLE steps; --"
MARKUP = (
    "<script>alert(1)</script><img src=x onerror=alert(2)>**bold** [x](javascript:1)"
)


def record_base(path: Path, title: str = "base", description: str = "") -> bytes:
    """Record the tiny session every nasty file starts from; return its bytes."""
    data = load_dataset("xor", n_samples=8, seed=0, test_fraction=0.25)
    spec = NetworkSpec(2, (LayerSpec(2, "tanh", dropout=0.2), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(
        loss="bce", optimizer="adam", lr=0.1, epochs=2, batch_size=4
    )
    path.unlink(missing_ok=True)
    outcome = record(
        spec,
        config,
        data,
        path,
        keyframe_interval=2,
        title=title,
        description=description,
    )
    assert outcome == "completed", outcome
    con = sqlite3.connect(path)
    con.execute("VACUUM")  # smallest file: no free pages
    con.close()
    return path.read_bytes()


def sql(path: Path, *statements: str, args: tuple[object, ...] = ()) -> None:
    """Change a session file as a tamperer would, with plain sqlite3."""
    con = sqlite3.connect(path)
    try:
        with con:
            for statement in statements:
                con.execute(statement, args if "?" in statement else ())
    finally:
        con.close()


def keyframe(path: Path, step: int = 0) -> tuple[dict[str, object], bytes]:
    """Return the JSON header and the payload of one keyframe bundle."""
    con = sqlite3.connect(path)
    try:
        (blob,) = con.execute(
            "SELECT state FROM keyframes WHERE step = ?", (step,)
        ).fetchone()
    finally:
        con.close()
    (n,) = struct.unpack_from("<I", blob)
    return json.loads(blob[4 : 4 + n]), blob[4 + n :]


def bundle(header: object, payload: bytes) -> bytes:
    """Return a bundle: a 4-byte header length, the JSON header, the payload."""
    text = json.dumps(header).encode()
    return struct.pack("<I", len(text)) + text + payload


def png() -> bytes:
    """Return a valid 1x1 PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00\xff"))
        + chunk(b"IEND", b"")
    )


def zipped(b: bytes) -> bytes:
    """Return a ZIP archive holding the base session (a 'compressed' upload)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("run.session", b)
    return out.getvalue()


def flipped(base: bytes, positions: list[tuple[int, int]]) -> bytes:
    """Return the base with one bit flipped at each (byte, bit)."""
    out = bytearray(base)
    for byte, bit in positions:
        out[byte] ^= 1 << bit
    return bytes(out)


def with_keyframe_shape(shape: object, key: str = "shape") -> Callable[[Path], None]:
    """Return an edit giving keyframe 0's first array the declared ``shape``."""

    def edit(path: Path) -> None:
        header, payload = keyframe(path)
        header["arrays"][0][key] = shape  # type: ignore[index]
        sql(path, "UPDATE keyframes SET state = ? WHERE step = 0",
            args=(bundle(header, payload),))  # fmt: skip

    return edit


def with_dataset_shape(shape: object) -> Callable[[Path], None]:
    """Return an edit whose dataset bundle declares X_train of ``shape``."""

    def edit(path: Path) -> None:
        entry = {"name": "X_train", "dtype": "<f8", "shape": shape, "offset": 0}
        blob = bundle({"arrays": [entry], "extra": None}, bytes(64))
        sql(path, "UPDATE arrays SET bundle = ? WHERE name = 'dataset'", args=(blob,))

    return edit


def with_meta(key: str, value: str) -> Callable[[Path], None]:
    """Return an edit setting metadata ``key`` to the raw JSON text ``value``."""

    def edit(path: Path) -> None:
        sql(path, "UPDATE meta SET value = ? WHERE key = ?", args=(value, key))

    return edit


def with_sql(*statements: str) -> Callable[[Path], None]:
    """Return an edit running ``statements`` on the file."""
    return lambda path: sql(path, *statements)


def entries() -> dict[str, tuple[object, str, str]]:
    """Return every nasty file: how to make it, what reading it gives, what it is.

    How to make it: a function of the base file's bytes (its parameter is
    ``b``) giving the new content, an edit of a copy (parameter ``path``), or
    the name of a special case in `build`. What reading it gives: ``opens``, or
    ``refused:`` and words of the refusal.
    """
    huge = 10**12
    return {
        # Other kinds of file renamed to .session.
        "empty.session": (lambda b: b"", "refused:is empty", "a file of 0 bytes"),
        "csv-renamed.session": (
            lambda b: b"x1,x2,y\n0,0,0\n1,1,0\n",
            "refused:not an SQLite file",
            "a CSV file renamed to .session",
        ),
        "png-renamed.session": (
            lambda b: png(),
            "refused:not an SQLite file",
            "a PNG image renamed to .session",
        ),
        "zip-renamed.session": (
            zipped,
            "refused:not an SQLite file",
            "a ZIP archive holding a real session, renamed to .session",
        ),
        "gzip-renamed.session": (
            lambda b: zlib.compress(b),
            "refused:not an SQLite file",
            "a zlib-compressed session",
        ),
        "html-renamed.session": (
            lambda b: b"<!doctype html><script>alert(1)</script>",
            "refused:not an SQLite file",
            "an HTML page with a script, renamed to .session",
        ),
        "json-renamed.session": (
            lambda b: json.dumps({"network": {"n_in": 2}}).encode(),
            "refused:not an SQLite file",
            "a JSON document that looks like session metadata",
        ),
        "sqlite-magic-only.session": (
            lambda b: b"SQLite format 3\x00",
            "refused:damaged",
            "the 16-byte SQLite magic string and nothing else",
        ),
        "other-sqlite.session": (
            with_sql(
                "PRAGMA application_id = 0",
                "PRAGMA user_version = 0",
            ),
            "refused:not a glassnet session",
            "a real session whose SQLite application id was cleared",
        ),
        # Cut short.
        "truncated-header.session": (
            lambda b: b[:50],
            "refused:",
            "the first 50 bytes of a session (half the SQLite header)",
        ),
        "truncated-first-page.session": (
            lambda b: b[:4000],
            "refused:",
            "a session cut inside its first page",
        ),
        "truncated-half.session": (
            lambda b: b[: len(b) // 2],
            "refused:",
            "the first half of a session",
        ),
        "truncated-last-page.session": (
            lambda b: b[: len(b) - 4096],
            "refused:",
            "a session without its last page",
        ),
        "garbage-tail.session": (
            lambda b: b + random.Random(7).randbytes(3000),
            "opens",
            "a session followed by 3000 random bytes (SQLite reads by page count)",
        ),
        # Bit flips.
        "bitflip-page-size.session": (
            lambda b: flipped(b, [(16, 0)]),
            "refused:",
            "one bit flipped in the page size of the SQLite header",
        ),
        "bitflip-page-count.session": (
            lambda b: flipped(b, [(31, 6)]),
            "refused:",
            "the header's page count made far larger than the file",
        ),
        "bitflip-schema-format.session": (
            lambda b: flipped(b, [(47, 3)]),
            "refused:",
            "the header's schema format number changed to one SQLite never wrote",
        ),
        "bitflips-random.session": (
            lambda b: flipped(
                b,
                [(random.Random(s).randrange(100, len(b)), s % 8) for s in range(40)],
            ),
            "refused:",
            "40 bits flipped at seeded random places after the header",
        ),
        # Another format version.
        "version-future.session": (
            with_sql("PRAGMA user_version = 99"),
            "refused:Upgrade glassnet",
            "a session from a future glassnet (format 99)",
        ),
        "version-zero.session": (
            with_sql("PRAGMA user_version = 0"),
            "refused:declares session format 0",
            "a session declaring format 0, which never existed",
        ),
        "version-negative.session": (
            with_sql("PRAGMA user_version = -7"),
            "refused:declares session format -7",
            "a session declaring format -7",
        ),
        "version-meta-disagrees.session": (
            with_meta("format_version", "1"),
            "refused:format",
            "the metadata's format_version disagrees with the file's user_version",
        ),
        # Huge declared shapes.
        "huge-keyframe-shape.session": (
            with_keyframe_shape([huge]),
            "refused:refuses arrays above",
            "keyframe 0 declares a weight array of 10^12 values (8 TB)",
        ),
        "huge-keyframe-2d.session": (
            with_keyframe_shape([10**6, 10**6]),
            "refused:refuses arrays above",
            "keyframe 0 declares a 10^6 x 10^6 weight matrix",
        ),
        "huge-keyframe-bigint.session": (
            with_keyframe_shape([10**400]),
            "refused:refuses arrays above",
            "keyframe 0 declares a dimension of 10^400 (no integer type holds it)",
        ),
        "huge-dataset-shape.session": (
            with_dataset_shape([huge, 2]),
            "refused:refuses arrays above",
            "the dataset declares 10^12 training rows in a 64-byte payload",
        ),
        "huge-network.session": (
            with_meta(
                "network",
                json.dumps(
                    {
                        "n_in": 2,
                        "layers": [
                            {"n_out": 10**6, "activation": "tanh"},
                            {"n_out": 10**6, "activation": "tanh"},
                            {"n_out": 1, "activation": "sigmoid"},
                        ],
                    }
                ),
            ),
            "refused:",
            "the metadata declares two hidden layers of a million units",
        ),
        "huge-header-length.session": (
            lambda path: sql(
                path,
                "UPDATE keyframes SET state = ? WHERE step = 0",
                args=(struct.pack("<I", 1 << 31) + b"{}",),
            ),
            "refused:",
            "keyframe 0's bundle claims a 2 GiB JSON header",
        ),
        "deep-json-meta.session": (
            with_meta("description", "[" * 20_000 + "]" * 20_000),
            "refused:",
            "a description of 20 000 nested JSON lists",
        ),
        # Code in text fields: shown as text, never run.
        "sql-in-title.session": (
            "title",
            "opens",
            "a title and description holding SQL meant to drop a table",
        ),
        "markup-in-title.session": (
            "markup",
            "opens",
            "a title and description holding a script tag, an image with onerror "
            "and Markdown",
        ),
        "sql-in-dataset-name.session": (
            with_meta("title", json.dumps(SQL)),
            "opens",
            "the title changed to SQL after recording (titles are not hashed)",
        ),
        "trigger.session": (
            with_sql(
                "CREATE TRIGGER spy AFTER UPDATE ON meta BEGIN DELETE FROM steps; END"
            ),
            "refused:holds objects glassnet never writes",
            "a trigger that would delete every step when metadata is updated",
        ),
        "view.session": (
            with_sql("CREATE VIEW v AS SELECT * FROM steps"),
            "refused:holds objects glassnet never writes",
            "an extra view",
        ),
        "evil-optimizer.session": (
            with_meta("config", json.dumps({"optimizer": "__import__('os')"})),
            "refused:",
            "the optimizer name is Python code",
        ),
        "evil-dropout-rng.session": (
            "rng",
            "refused:",
            "keyframe 0 names os.system as its random generator",
        ),
        "object-dtype.session": (
            "object",
            "refused:only",
            "keyframe 0 declares an array of Python objects (pickle)",
        ),
        "dtype-list.session": (
            with_keyframe_shape(["<f8"], key="dtype"),
            "refused:only",
            "keyframe 0 declares its dtype as a list (once a TypeError)",
        ),
        # Rows edited to nonsense.
        "steps-gap.session": (
            with_sql("UPDATE steps SET step = 40 WHERE step = 3"),
            "refused:",
            "the last step renumbered 40, leaving a gap",
        ),
        "summary-text.session": (
            with_sql("UPDATE steps SET summary = 'loss' WHERE step = 1"),
            "refused:",
            "a step's binary summary replaced by text",
        ),
        "no-dataset.session": (
            with_sql("DELETE FROM arrays"),
            "refused:",
            "the dataset row deleted",
        ),
        "lr-changed.session": (
            "lr",
            "refused:reproduce",
            "the learning rate changed after recording: the steps no longer follow",
        ),
    }


def build(entry: object, base: bytes, path: Path) -> None:
    """Write one nasty file from the base session."""
    kind = entry
    if kind == "title" or kind == "markup":
        text = SQL + ' " OR 1=1 --' if kind == "title" else MARKUP
        record_base(path, title=text, description=text)
        return
    path.write_bytes(base)
    if kind == "rng":
        header, payload = keyframe(path)
        header["extra"]["dropout_rng"] = {  # type: ignore[index]
            "bit_generator": "os.system",
            "state": {"state": 1, "inc": 1},
        }
        sql(path, "UPDATE keyframes SET state = ? WHERE step = 0",
            args=(bundle(header, payload),))  # fmt: skip
    elif kind == "object":
        header, payload = keyframe(path)
        header["arrays"][0]["dtype"] = "|O"  # type: ignore[index]
        sql(path, "UPDATE keyframes SET state = ? WHERE step = 0",
            args=(bundle(header, payload),))  # fmt: skip
    elif kind == "lr":
        con = sqlite3.connect(path)
        (text,) = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        con.close()
        config = json.loads(text)
        config["lr"] = 0.11
        sql(path, "UPDATE meta SET value = ? WHERE key = 'config'",
            args=(json.dumps(config),))  # fmt: skip
    elif callable(kind) and "b" in inspect.signature(kind).parameters:
        path.write_bytes(kind(base))  # a new content made from the bytes
    elif callable(kind):
        kind(path)  # an edit of the copy, with sqlite3
    for extra in (Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        extra.unlink(missing_ok=True)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.session"):
        old.unlink()
    base = record_base(OUT / "base.session")
    lines = ["# file\texpected\tdescription"]
    lines.append("base.session\topens\tthe intact tiny session every file starts from")
    for name, (edit, expected, description) in entries().items():
        build(edit, base, OUT / name)
        lines.append(f"{name}\t{expected}\t{description}")
    (OUT / "INDEX.tsv").write_text("\n".join(lines) + "\n")
    total = sum(p.stat().st_size for p in OUT.glob("*.session"))
    print(f"{len(lines) - 1} files, {total / 1024:.0f} KiB in {OUT}")


if __name__ == "__main__":
    main()
