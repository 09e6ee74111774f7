"""Define the SQLite layout of a session file and how old layouts are upgraded.

``docs/session-format.md`` describes every table for readers without glassnet.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from sessions.chain import write_chain
from sessions.codec import from_json, to_json
from sessions.errors import SessionFormatError

__all__ = [
    "APPLICATION_ID",
    "FORMAT_VERSION",
    "SCHEMA",
    "check_schema",
    "current_config",
    "upgrade",
]

APPLICATION_ID = 0x474C4E54  # "GLNT": marks the file as a glassnet session.
FORMAT_VERSION = 2

SCHEMA = {
    "meta": """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    "arrays": """CREATE TABLE arrays (
        name TEXT PRIMARY KEY,
        bundle BLOB NOT NULL
    )""",
    "keyframes": """CREATE TABLE keyframes (
        step INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        state BLOB NOT NULL
    )""",
    "steps": """CREATE TABLE steps (
        step INTEGER PRIMARY KEY,
        epoch INTEGER NOT NULL,
        seq_first INTEGER NOT NULL,
        n_events INTEGER NOT NULL,
        status TEXT NOT NULL,
        summary BLOB NOT NULL,
        recorded_at REAL NOT NULL
    )""",
    "epochs": """CREATE TABLE epochs (
        epoch INTEGER PRIMARY KEY,
        step INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        train TEXT NOT NULL,
        test TEXT NOT NULL
    )""",
    "events": """CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        step INTEGER NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
    "chain": """CREATE TABLE chain (
        link INTEGER PRIMARY KEY,
        keyframes_upto INTEGER NOT NULL,
        steps_upto INTEGER NOT NULL,
        epochs_upto INTEGER NOT NULL,
        events_upto INTEGER NOT NULL,
        digest BLOB NOT NULL
    )""",
}

_SINCE = {"chain": 2}
"""Tables added after format 1: the format version that added them."""

# Upgrades from format version N to N + 1, applied in order on a writable copy.


def current_config(config: Any, version: int) -> Any:
    """Return a stored training config as the current format states it.

    Format 2 added ``train_metrics``; a format 1 run evaluated the whole
    training set after every epoch (``"evaluation"``).  Anything but a dict
    is returned unchanged, for the metadata checks to refuse.
    """
    if version < 2 and isinstance(config, dict):
        return {**config, "train_metrics": config.get("train_metrics", "evaluation")}
    return config


def _upgrade_v1_to_v2(con: sqlite3.Connection) -> None:
    """Name format 1's training metrics in the stored config; add a hash chain.

    The chain of an upgraded file covers it as it was when upgraded: it shows
    edits made after the upgrade, not before.
    """
    row = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    config = current_config(from_json(row[0]), 1)
    con.execute("UPDATE meta SET value = ? WHERE key = 'config'", (to_json(config),))
    con.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    con.execute(SCHEMA["chain"])
    write_chain(con)


_UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {1: _upgrade_v1_to_v2}


def check_schema(con: sqlite3.Connection, path: str) -> int:
    """Return the file's format version after checking it is a glassnet session.

    Raises
    ------
    SessionFormatError
        If the file is not a glassnet session, was written by a newer
        glassnet, or holds objects (triggers, views, other tables) that
        glassnet never writes.
    """
    app_id = con.execute("PRAGMA application_id").fetchone()[0]
    if app_id != APPLICATION_ID:
        msg = (
            f"{path} is an SQLite database but not a glassnet session (its "
            "application id is not glassnet's). Open a file written by "
            "`glassnet record` or the app."
        )
        raise SessionFormatError(msg)
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version > FORMAT_VERSION:
        raise SessionFormatError(_newer(path, version))
    if version < 1:
        msg = f"{path} declares session format {version}, which never existed."
        raise SessionFormatError(msg)
    objects = con.execute(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_autoindex_%'"
    ).fetchall()
    found = {name for kind, name in objects if kind == "table"}
    extra = sorted(f"{kind} {name}" for kind, name in objects if name not in SCHEMA)
    if extra:
        msg = (
            f"{path} holds objects glassnet never writes ({', '.join(extra)}); "
            "it was altered after recording and will not be opened."
        )
        raise SessionFormatError(msg)
    missing = sorted(t for t in set(SCHEMA) - found if _SINCE.get(t, 1) <= int(version))
    if missing:
        msg = f"{path} lacks the tables {', '.join(missing)}: it is not a session."
        raise SessionFormatError(msg)
    _check_meta_version(con, path, int(version))
    return int(version)


def _newer(path: str, version: int) -> str:
    """Return the message for a file in a format newer than this glassnet reads."""
    return (
        f"{path} uses session format {version}: it is from a newer glassnet, and "
        f"this glassnet reads formats up to {FORMAT_VERSION}. Upgrade glassnet to "
        "open it."
    )


def _check_meta_version(con: sqlite3.Connection, path: str, version: int) -> None:
    """Refuse a file whose ``meta.format_version`` disagrees with its user_version.

    Both state the format. A newer version in the metadata gets the same
    message as a newer user_version; any other disagreement means the file
    was altered after recording. A file without the entry is left to the
    metadata checks that follow.
    """
    row = con.execute(
        "SELECT substr(value, 1, 40) FROM meta WHERE key = 'format_version'"
    ).fetchone()
    if row is None:
        return
    text = str(row[0]).strip()
    declared = int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None
    if declared is not None and declared > FORMAT_VERSION:
        raise SessionFormatError(_newer(path, declared))
    if declared != version:
        msg = (
            f"{path} declares format_version {text[:20]} in its metadata but "
            f"user_version {version} in its header; the two must agree, so the "
            "file was altered after recording and will not be opened."
        )
        raise SessionFormatError(msg)


def upgrade(con: sqlite3.Connection, version: int) -> None:
    """Bring a writable session from ``version`` to :data:`FORMAT_VERSION`."""
    while version < FORMAT_VERSION:
        _UPGRADES[version](con)
        version += 1
        con.execute(f"PRAGMA user_version = {version}")
