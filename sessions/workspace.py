"""Give each user of a class a private folder, and everyone the class library.

A class lives under one root folder: ``<root>/users/<name>/`` is the private
workspace of each user, ``<root>/library/`` the class library, which every
user reads and only instructors change.  Without accounts (one person on a
laptop) a single folder is both the workspace and the whole library.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sessions.library import AccessError, SessionFolder, check_name
from sessions.users import User, check_user_name, user_role

__all__ = ["LIBRARY_DIR", "USERS_DIR", "ClassAccess", "Workspace", "class_folder"]

logger = logging.getLogger(__name__)

USERS_DIR = "users"
LIBRARY_DIR = "library"


@dataclass(frozen=True)
class Workspace:
    """The folders one user may reach, and what they may do in each.

    ``own`` is the user's workspace (always writable); ``library`` is the
    class library (None without accounts), writable only for instructors.
    """

    own: SessionFolder
    library: SessionFolder | None = None
    user: User | None = None

    @classmethod
    def single(cls, folder: str | Path) -> Workspace:
        """Return the workspace of one person without an account: one folder."""
        return cls(SessionFolder(Path(folder), writable=True, label="the library"))

    @classmethod
    def for_user(cls, root: str | Path, user: User) -> Workspace:
        """Return ``user``'s workspace in the class under ``root``.

        Their folder is created (readable by the server's user only) if it is
        missing.

        Raises
        ------
        AccessError
            If a folder on the way is a link or not a folder.
        """
        name = check_user_name(user.name)
        own = class_folder(root, USERS_DIR, name)
        library = class_folder(root, LIBRARY_DIR)
        return cls(
            SessionFolder(own, writable=True, label="your workspace"),
            SessionFolder(library, writable=user.instructor, label="the class library"),
            User(name, user.instructor),
        )

    @property
    def folders(self) -> tuple[SessionFolder, ...]:
        """Return every folder the user may read: their own first."""
        return (self.own,) if self.library is None else (self.own, self.library)

    def find(self, path: str | Path) -> SessionFolder | None:
        """Return the folder of ``path`` among the user's folders, or None."""
        return next((f for f in self.folders if f.contains(path)), None)

    def file(self, name: str, *, library: bool = False) -> Path:
        """Return the session file ``name`` of the user's workspace or the library.

        Raises
        ------
        AccessError
            If there is no such file, or no library (a single-folder workspace).
        """
        folder = self.library if library else self.own
        if folder is None:
            raise AccessError(
                "There is no class library here: sessions are served from one folder."
            )
        return folder.file(name)

    def publish(self, source: str | Path, name: str) -> Path:
        """Copy a session the user can read into the class library as ``name``.

        Raises
        ------
        AccessError
            If there is no library, the user may not change it, or ``source``
            is not in one of the user's folders.
        SessionError
            If the name is taken or the file cannot be copied.
        """
        if self.library is None:
            raise AccessError("There is no class library here to copy sessions into.")
        self.library.require_writable("copy sessions into")
        check_name(name)
        if self.find(source) is None:
            msg = f"{Path(source).name} is not in your folders; open it from there."
            raise AccessError(msg)
        return self.library.add_copy(source, name)


@dataclass(frozen=True)
class ClassAccess:
    """Who may use a class served to many people, and where their folders are.

    With ``users_file`` (password sign-in) only its accounts get in, with the
    role it gives them; without it (OAuth) everyone the provider signs in gets
    a workspace.  ``instructors`` names more instructors either way.
    """

    root: Path
    users_file: Path | None = None
    instructors: frozenset[str] = frozenset()

    def user(self, name: str | None) -> User:
        """Return the user signed in as ``name``, with their role.

        Raises
        ------
        AccessError
            If nobody is signed in, or the name has no account.
        UsersFileError
            If the name cannot name a workspace, or the users file is unreadable.
        """
        if not name or name == "guest":
            msg = "You are not signed in: reload the page to sign in."
            raise AccessError(msg)
        key = check_user_name(name)
        instructor = key in {i.strip().lower() for i in self.instructors}
        if self.users_file is None:
            return User(key, instructor)
        user = user_role(self.users_file, key)
        if user is None:
            msg = f"{key} has no account in this class any more; ask your instructor."
            raise AccessError(msg)
        return User(key, user.instructor or instructor)

    def workspace(self, name: str | None) -> Workspace:
        """Return the workspace of the user signed in as ``name``; see :meth:`user`."""
        return Workspace.for_user(self.root, self.user(name))


def class_folder(root: str | Path, *parts: str) -> Path:
    """Return the folder ``root/parts...``, creating it; refuse links on the way.

    Each part must be a single plain folder name.  The folders are created
    readable by the server's user only.

    Raises
    ------
    AccessError
        If a part is not a plain name, or a folder on the way is a link or a
        file, or the result is not inside ``root``.
    """
    for part in parts:
        if not part or part in (".", "..") or any(c in part for c in "/\\\0"):
            raise AccessError(f"{part!r} is not a plain folder name.")
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    base = base.resolve()
    path = base
    for part in parts:
        path = path / part
        if path.is_symlink():
            msg = (
                f"{part} is a link inside the class folder; glassnet only uses real "
                "folders there. Replace the link with a folder."
            )
            raise AccessError(msg)
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except FileExistsError:
            raise AccessError(f"{part} in the class folder is not a folder.") from None
    if path.resolve() != base.joinpath(*parts):
        raise AccessError(f"{'/'.join(parts)} leads outside the class folder.")
    return path
