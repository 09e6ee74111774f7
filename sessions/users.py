"""Keep the accounts of a class: user names, roles and salted password hashes.

A users file is JSON, written only by :func:`add_user` and :func:`remove_user`
(``glassnet users add``); it never holds a password, only an scrypt hash
with its own random salt.  User names double as workspace folder names, so
:func:`check_user_name` admits only a small, safe alphabet.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessions.errors import SessionError

__all__ = [
    "INSTRUCTOR",
    "MIN_PASSWORD_CHARS",
    "ROLES",
    "STUDENT",
    "User",
    "UsersFileError",
    "add_user",
    "check_password",
    "check_user_name",
    "find_user",
    "hash_password",
    "read_users",
    "remove_user",
    "user_role",
    "verify_password",
]

logger = logging.getLogger(__name__)

STUDENT = "student"
INSTRUCTOR = "instructor"
ROLES = (STUDENT, INSTRUCTOR)
"""The roles a user can have: instructors may also write the class library."""

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
MAX_USER_CHARS = 64
FORMAT = "glassnet-users"
VERSION = 1

# scrypt's cost settings: about 16 MiB of memory and a tenth of a second a try.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_FILE_BYTES = 4 * 2**20

# Lower-case ASCII letters and digits first, then also '.', '_', '-', '+', '@'
# (so e-mail addresses from OAuth fit); re.ASCII keeps look-alike letters out.
_USER_NAME = re.compile(r"[a-z0-9][a-z0-9._@+-]*", re.ASCII)
_RESERVED = frozenset({"guest", "library", "users"})


class UsersFileError(SessionError, ValueError):
    """Raised for a users file that cannot be read or written, or a bad entry."""


@dataclass(frozen=True)
class User:
    """A signed-in person: the workspace name and whether they teach the class."""

    name: str
    instructor: bool = False

    @property
    def role(self) -> str:
        """Return ``"instructor"`` or ``"student"``."""
        return INSTRUCTOR if self.instructor else STUDENT


def check_user_name(name: object) -> str:
    """Return ``name`` as a workspace name (lower case), or raise.

    A user name has 1 to 64 characters: lower-case ASCII letters, digits and
    ``. _ - + @``, starting with a letter or digit, without ``..``.  Upper-case
    letters are lowered (GitHub and e-mail names ignore case).  ``guest``,
    ``library`` and ``users`` are reserved.

    Raises
    ------
    UsersFileError
        If the name does not fit.
    """
    text = name.lower() if isinstance(name, str) else None
    if (
        text is None
        or len(text) > MAX_USER_CHARS
        or not _USER_NAME.fullmatch(text)
        or ".." in text
        or text in _RESERVED
    ):
        shown = name if not isinstance(name, str) else name[:80]
        msg = (
            f"{shown!r} is not a user name glassnet accepts: use 1 to "
            f"{MAX_USER_CHARS} lower-case letters, digits and '.', '_', '-', '+', "
            "'@', starting with a letter or digit, no '..' (not 'guest', 'library' "
            "or 'users'), like alice or bob.smith@school.edu."
        )
        raise UsersFileError(msg)
    return text


def check_password(password: str) -> str:
    """Return ``password`` if it is long enough to keep, else raise."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        msg = (
            f"A password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} "
            f"characters; this one has {len(password)}. Choose a longer one."
        )
        raise UsersFileError(msg)
    return password


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Return the stored form of ``password``: scrypt with a random salt.

    The text is ``scrypt$N$r$p$SALT$KEY`` (SALT and KEY in base64), so the
    cost settings travel with each hash and can grow later.
    """
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    key = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(
        [
            "scrypt",
            str(_SCRYPT_N),
            str(_SCRYPT_R),
            str(_SCRYPT_P),
            _b64(salt),
            _b64(key),
        ]
    )


def verify_password(password: str, stored: str) -> bool:
    """Return whether ``password`` matches ``stored`` (from :func:`hash_password`).

    A malformed ``stored`` text never matches.  The comparison takes the same
    time whatever the first differing byte.
    """
    parts = stored.split("$") if isinstance(stored, str) else []
    if len(parts) != 6 or parts[0] != "scrypt" or len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return False
    # Refuse cost settings a tampered file could use to exhaust the server.
    if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16 and key):
        return False
    try:
        candidate = _scrypt(password, salt, n, r, p, len(key))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, key)


def read_users(path: str | Path) -> dict[str, dict[str, str]]:
    """Return the accounts of a users file: ``{name: {"password", "role"}}``.

    A missing file holds no accounts.

    Raises
    ------
    UsersFileError
        If the file is not a glassnet users file or an entry is malformed.
    """
    path = Path(path)
    if not path.exists():
        return {}
    if path.stat().st_size > _MAX_FILE_BYTES:
        raise UsersFileError(f"{path} is larger than a users file can be.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"{path} is not a readable users file ({err}); fix or remove it."
        raise UsersFileError(msg) from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        msg = (
            f'{path} is not a glassnet users file (no "format": {FORMAT!r}); '
            "create it with glassnet users add."
        )
        raise UsersFileError(msg)
    users = data.get("users")
    if data.get("version") != VERSION or not isinstance(users, dict):
        version = data.get("version")
        msg = f"{path} has version {version!r}; this glassnet reads {VERSION}."
        raise UsersFileError(msg)
    accounts: dict[str, dict[str, str]] = {}
    for name, entry in users.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("password"), str)
            or entry.get("role") not in ROLES
            or check_user_name(name) != name
        ):
            msg = (
                f"{path} has a malformed entry for {name!r}; remove it and add it "
                "again with glassnet users add."
            )
            raise UsersFileError(msg)
        accounts[name] = {"password": entry["password"], "role": entry["role"]}
    return accounts


def find_user(path: str | Path, name: str, password: str) -> User | None:
    """Return the user ``name`` of the users file if ``password`` is theirs.

    An unknown name costs the same hashing time as a known one, so a wrong
    name cannot be told from a wrong password by timing.
    """
    try:
        key = check_user_name(name.strip())
    except UsersFileError:
        key = ""
    entry = read_users(path).get(key)
    if entry is None:
        verify_password(password, _dummy_hash())
        return None
    if not verify_password(password, entry["password"]):
        return None
    return User(key, entry["role"] == INSTRUCTOR)


def user_role(path: str | Path, name: str) -> User | None:
    """Return the user ``name`` with the role the users file gives, or None."""
    entry = read_users(path).get(name)
    if entry is None:
        return None
    return User(name, entry["role"] == INSTRUCTOR)


def add_user(
    path: str | Path, name: str, password: str, *, instructor: bool = False
) -> User:
    """Add ``name`` (or replace its password and role) in the users file.

    The file is created if missing, readable by its owner only, and written
    whole into a temporary file that then replaces it.
    """
    key = check_user_name(name)
    check_password(password)
    accounts = read_users(path)
    role = INSTRUCTOR if instructor else STUDENT
    accounts[key] = {"password": hash_password(password), "role": role}
    _write(Path(path), accounts)
    logger.info("Added user %s (%s) to %s", key, role, path)
    return User(key, instructor)


def remove_user(path: str | Path, name: str) -> None:
    """Remove ``name`` from the users file (their workspace stays on disk)."""
    key = check_user_name(name)
    accounts = read_users(path)
    if key not in accounts:
        raise UsersFileError(f"There is no user {key!r} in {path}.")
    del accounts[key]
    _write(Path(path), accounts)


def _write(path: Path, accounts: dict[str, dict[str, str]]) -> None:
    """Write the accounts into ``path`` atomically, readable by its owner only."""
    data: dict[str, Any] = {"format": FORMAT, "version": VERSION, "users": accounts}
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".users-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise UsersFileError(f"Could not write {path} ({err}).") from err


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, size: int = 0) -> bytes:
    """Return the scrypt key of ``password``."""
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * r * n + 2**20,
        dklen=size or _KEY_BYTES,
    )


def _b64(raw: bytes) -> str:
    """Return ``raw`` in base64 text."""
    return base64.b64encode(raw).decode("ascii")


@functools.cache
def _dummy_hash() -> str:
    """Return a hash no password matches, for names that are not in the file."""
    return hash_password(secrets.token_hex(16))
