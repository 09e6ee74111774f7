"""List the session files of a folder and edit their title and description.

Listing reads each file's metadata table and counts its step rows; it never
rebuilds a step, so a folder of long runs lists quickly.  A file that cannot
be read is listed as damaged, with the reason.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sessions.codec import from_json, to_json
from sessions.errors import SessionError, SessionFormatError
from sessions.schema import check_schema
from sessions.state import decode_event

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_TITLE_CHARS",
    "SUFFIX",
    "SessionInfo",
    "check_name",
    "describe_session",
    "list_sessions",
    "set_title",
]

logger = logging.getLogger(__name__)

SUFFIX = ".session"
"""The file name ending of session files the library lists."""

MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 5000

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,119}$")
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class SessionInfo:
    """What the library shows of one session file, read from its metadata.

    ``damaged`` is empty for a readable file and otherwise says what is
    wrong; the other fields then hold what could be read (or defaults).
    """

    path: Path
    title: str = ""
    description: str = ""
    dataset: str = ""
    network: str = ""
    steps: int = 0
    total_steps: int = 0
    status: str = ""
    created_at: str = ""
    damaged: str = ""

    @property
    def name(self) -> str:
        """Return the file name (what URLs and the app use to name the file)."""
        return self.path.name


def check_name(name: str) -> str:
    """Return ``name`` if it is a plain session file name, else raise.

    A plain name has no folder part (no ``/``, ``\\`` or ``..``), starts with
    a letter or digit, uses only letters, digits, ``.``, ``_``, ``-`` and
    spaces, and ends in ``.session``.

    Raises
    ------
    SessionError
        If the name is not plain.
    """
    if (
        not isinstance(name, str)
        or ".." in name
        or not _NAME.match(name)
        or not name.endswith(SUFFIX)
    ):
        msg = (
            f"{name!r} is not a session file name: use letters, digits, '.', '_', "
            f"'-' and spaces, no folders, ending in {SUFFIX!r} (like run1{SUFFIX})."
        )
        raise SessionError(msg)
    return name


def list_sessions(folder: str | Path) -> list[SessionInfo]:
    """Return every ``*.session`` file of ``folder``, newest first.

    Symbolic links are left out (the app opens only files inside the
    folder).  A missing folder lists nothing.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    infos = [
        describe_session(p)
        for p in root.iterdir()
        if p.name.endswith(SUFFIX) and not p.is_symlink() and p.is_file()
    ]
    return sorted(infos, key=lambda i: (i.created_at, i.name), reverse=True)


def describe_session(path: str | Path) -> SessionInfo:
    """Return what the library shows of one file, or why it cannot be read.

    Never raises for a bad file: the problem is returned in ``damaged``,
    naming the file by its name only (the folder stays private to the server).
    """
    path = Path(path)
    info = _describe(path)
    if info.damaged and str(path) != path.name:
        info = replace(info, damaged=info.damaged.replace(str(path), path.name))
    return info


def _describe(path: Path) -> SessionInfo:
    """Return :func:`describe_session` of ``path``, the problem naming its path."""
    try:
        con = _connect(path, writable=False)
    except SessionError as err:
        return SessionInfo(path, damaged=str(err))
    try:
        check_schema(con, str(path))
        meta = _read_meta(con, path)
        steps = int(con.execute("SELECT count(*) FROM steps").fetchone()[0])
        ends = con.execute(
            "SELECT body FROM events WHERE kind = 'session_ended' LIMIT 1"
        ).fetchall()
        status = "incomplete"
        if ends:
            status = str(getattr(decode_event(ends[0][0], str(path)), "reason", ""))
        sizes = [meta["network"]["n_in"]] + [
            layer["n_out"] for layer in meta["network"]["layers"]
        ]
        return SessionInfo(
            path=path,
            title=str(meta.get("title", "")),
            description=str(meta.get("description", "")),
            dataset=str(meta["dataset"]["name"]),
            network="-".join(str(int(s)) for s in sizes),
            steps=steps,
            total_steps=int(meta["total_steps"]),
            status=status,
            created_at=str(meta.get("created_at", "")),
        )
    except SessionError as err:
        return SessionInfo(path, damaged=str(err))
    except sqlite3.DatabaseError as err:
        return SessionInfo(path, damaged=f"{path} is damaged ({err}).")
    except (KeyError, TypeError, ValueError, IndexError) as err:
        return SessionInfo(
            path, damaged=f"{path} has unreadable metadata ({err!r}): it is damaged."
        )
    finally:
        con.close()


def set_title(
    path: str | Path, title: str, description: str | None = None
) -> SessionInfo:
    """Write a new title (and description, unless None) into a session file.

    Only the ``title`` and ``description`` entries of the ``meta`` table
    change; the recorded run is untouched.

    Raises
    ------
    SessionError
        If the title is empty or too long, the description too long, or the
        file is not a readable glassnet session.
    """
    path = Path(path)
    title = title.strip()
    if not title or len(title) > MAX_TITLE_CHARS:
        msg = (
            f"A title needs 1 to {MAX_TITLE_CHARS} characters; got {len(title)}. "
            "Type a short name for the run."
        )
        raise SessionError(msg)
    if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
        msg = (
            f"A description holds at most {MAX_DESCRIPTION_CHARS} characters; got "
            f"{len(description)}. Shorten it."
        )
        raise SessionError(msg)
    info = describe_session(path)
    if info.damaged:
        raise SessionFormatError(info.damaged)
    values = {"title": title}
    if description is not None:
        values["description"] = description
    con = _connect(path, writable=True)
    try:
        with con:
            con.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(k, to_json(v)) for k, v in values.items()],
            )
    except sqlite3.DatabaseError as err:
        msg = f"Could not write the title into {path} ({err}); is the file writable?"
        raise SessionError(msg) from err
    finally:
        con.close()
    logger.info("Set the title of %s to %r", path, title)
    return describe_session(path)


def _connect(path: Path, *, writable: bool) -> sqlite3.Connection:
    """Return a connection after checking the file looks like SQLite."""
    if path.is_symlink() or not path.is_file():
        raise SessionFormatError(f"{path} does not exist or is not a plain file.")
    with path.open("rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        what = "empty" if not head else "not a glassnet session (not an SQLite file)"
        raise SessionFormatError(f"{path} is {what}.")
    try:
        con = sqlite3.connect(path, check_same_thread=False)
        con.execute("PRAGMA trusted_schema = OFF")
        if not writable:
            con.execute("PRAGMA query_only = ON")
    except sqlite3.DatabaseError as err:
        raise SessionFormatError(f"{path} is damaged ({err}).") from err
    return con


def _read_meta(con: sqlite3.Connection, path: Path) -> dict[str, Any]:
    """Return the small entries of the meta table (large ones are refused)."""
    rows = con.execute(
        "SELECT key, value FROM meta WHERE key IN "
        "('title', 'description', 'dataset', 'network', 'total_steps', "
        "'created_at') AND length(value) < 1000000"
    ).fetchall()
    meta = {k: from_json(v) for k, v in rows}
    for key in ("dataset", "network", "total_steps"):
        if key not in meta:
            raise SessionFormatError(f"{path} has no {key!r} in its metadata.")
    return meta
