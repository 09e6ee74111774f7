"""List the session files of a folder and edit their title and description.

Listing reads each file's metadata table and counts its step rows; it never
rebuilds a step, so a folder of long runs lists quickly.  A file that cannot
be read is listed as damaged, with the reason.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sessions.codec import from_json, to_json
from sessions.errors import SessionError, SessionFormatError
from sessions.guide import Stop, write_guide
from sessions.schema import check_schema
from sessions.state import decode_event

__all__ = [
    "AccessError",
    "MAX_DESCRIPTION_CHARS",
    "MAX_TITLE_CHARS",
    "SUFFIX",
    "SessionFolder",
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

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,119}", re.ASCII)
_SQLITE_MAGIC = b"SQLite format 3\x00"


class AccessError(SessionError):
    """Raised when a user asks for a file outside their folders or to change one
    they may only read."""


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
        or not _NAME.fullmatch(name)
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


@dataclass(frozen=True)
class SessionFolder:
    """A folder of session files, and whether its user may change it.

    Every file is reached by a plain name (:func:`check_name`) and must be a
    regular file directly inside the folder: links and names that lead
    elsewhere are refused, whatever the caller shows or hides.

    ``label`` names the folder in messages ("the library", "your workspace",
    "the class library").
    """

    path: Path
    writable: bool = True
    label: str = "the library"

    def sessions(self) -> list[SessionInfo]:
        """Return the folder's session files, newest first."""
        return list_sessions(self.path)

    def file(self, name: str) -> Path:
        """Return the session file ``name`` of this folder, or raise.

        Raises
        ------
        SessionError
            If ``name`` is not a plain session file name.
        AccessError
            If there is no regular file of that name directly in the folder
            (a link, a folder, or a missing file).
        """
        check_name(name)
        path = self.path / name
        if not self.contains(path) or not path.is_file():
            msg = f"There is no session {name!r} in {self.label}; pick one there."
            raise AccessError(msg)
        return path

    def contains(self, path: str | Path) -> bool:
        """Return whether ``path`` is a file name directly inside this folder.

        A link is never inside (even one pointing back into the folder).
        """
        path = Path(path)
        try:
            return (
                not path.is_symlink()
                and path.resolve().parent == self.path.resolve()
                and not self.path.is_symlink()
            )
        except (OSError, RuntimeError):
            return False

    def require_writable(self, action: str) -> None:
        """Raise :class:`AccessError` (naming ``action``) if the folder is read-only."""
        if not self.writable:
            msg = (
                f"You cannot {action} {self.label}: it is read-only for you. "
                "Keep your own copy in your workspace instead."
            )
            raise AccessError(msg)

    def set_title(
        self, name: str, title: str, description: str | None = None
    ) -> SessionInfo:
        """Write a title (and description) into the file ``name``; see set_title."""
        self.require_writable("change titles in")
        return set_title(self.file(name), title, description)

    def set_guide(self, name: str, stops: Sequence[Stop]) -> None:
        """Store ``stops`` as the guide of the file ``name``; see write_guide."""
        self.require_writable("change guides in")
        write_guide(self.file(name), stops)

    def keep(
        self,
        name: str,
        write: Callable[[Path], None],
        check: Callable[[Path], None],
    ) -> Path:
        """Create the new file ``name``: ``write`` it, ``check`` it, then place it.

        ``write(tmp)`` fills a temporary file inside the folder and
        ``check(tmp)`` raises :class:`SessionError` if it must not be kept;
        only then does the file appear under ``name``.  An existing name is
        never replaced, even one that appears while writing.

        Raises
        ------
        SessionError
            If the name is not plain or taken, or ``check`` refuses the file.
        AccessError
            If the folder is read-only.
        """
        self.require_writable("add files to")
        check_name(name)
        target = self.path / name
        taken = f"{name} is already in {self.label}; rename the file and try again."
        if target.exists() or target.is_symlink():
            raise SessionError(taken)
        self.path.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".new-", suffix=".tmp", dir=self.path)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            write(tmp)
            check(tmp)
            # NOTE: link() fails if the name appeared meanwhile, unlike rename().
            os.link(tmp, target)
        except FileExistsError:
            raise SessionError(taken) from None
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)
        logger.info("Added %s to %s", name, self.path)
        return target

    def add_copy(self, source: str | Path, name: str) -> Path:
        """Copy the readable session file ``source`` into this folder as ``name``.

        The copy is made with SQLite's backup, so it holds whatever the
        source's write-ahead log still keeps.  A run still being recorded is
        refused.

        Raises
        ------
        SessionError
            If ``source`` is damaged or still recording, or ``name`` is taken.
        AccessError
            If the folder is read-only.
        """
        source = Path(source)
        info = describe_session(source)
        if info.damaged:
            raise SessionFormatError(info.damaged)
        if info.status == "incomplete":
            msg = f"{source.name} is still being recorded; copy it once its run ends."
            raise SessionError(msg)

        def write(tmp: Path) -> None:
            src = _connect(source, writable=False)
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
            except sqlite3.DatabaseError as err:
                raise SessionError(f"Could not copy {source.name} ({err}).") from err
            finally:
                dst.close()
                src.close()

        def check(tmp: Path) -> None:
            copied = describe_session(tmp)
            if copied.damaged:
                text = copied.damaged.replace(tmp.name, name)
                raise SessionFormatError(f"{name} was not copied: {text}")

        return self.keep(name, write, check)


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
