"""Workspaces of a class: who reaches which folder, and hostile names and links."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sessions import Session, SessionError
from sessions.library import AccessError, SessionFolder, check_name
from sessions.users import User, UsersFileError, add_user, check_user_name
from sessions.workspace import ClassAccess, Workspace, class_folder

HOSTILE_SESSION_NAMES = [
    "..",
    "../x.session",
    "..session",
    "/etc/passwd",
    "/tmp/x.session",
    "a/b.session",
    "a\\b.session",
    "x.session\0.txt",
    "nul\0.session",
    ".hidden.session",
    "x.session\n",
    "x" * 200 + ".session",
    "\u202eevil.session",  # right-to-left override
    "ｘ.session",  # fullwidth x
    "аlice.session",  # Cyrillic a
    "x.session/",
    "",
    " x.session",
]


@pytest.fixture
def root(tmp_path: Path, recorded: Path) -> Path:
    """A class folder: alice and bob each hold a run, the library holds one."""
    root = tmp_path / "class"
    for part in ("users/alice", "users/bob", "library"):
        shutil.copy(recorded, class_folder(root, *part.split("/")) / "tiny.session")
    shutil.copy(recorded, root / "users" / "alice" / "alice-only.session")
    return root


def _student(root: Path, name: str = "alice") -> Workspace:
    return Workspace.for_user(root, User(name))


# -- names -----------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_SESSION_NAMES)
def test_hostile_session_names_are_refused_by_every_folder(
    root: Path, name: str
) -> None:
    workspace = _student(root)
    with pytest.raises(SessionError):
        check_name(name)
    for library in (False, True):
        with pytest.raises(SessionError):
            workspace.file(name, library=library)


@pytest.mark.parametrize(
    "name",
    [
        "..",
        ".",
        "../bob",
        "/etc/passwd",
        "a/b",
        "a\\b",
        "nul\0",
        "a..b",
        "x" * 65,
        "",
        " ",
        "guest",
        "library",
        "users",
        "\u202ealice",
        "аlice",  # Cyrillic a
        "ａlice",  # fullwidth a
        "alice\n",
        ".alice",
        "-alice",
        "bob smith",
        42,
        None,
    ],
)
def test_hostile_user_names_are_refused(name: object) -> None:
    with pytest.raises(UsersFileError, match="not a user name"):
        check_user_name(name)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("Bob.Smith@School.edu", "bob.smith@school.edu"),
        ("a+b_c-d", "a+b_c-d"),
        ("x" * 64, "x" * 64),
    ],
)
def test_user_names_are_lowered_and_kept(name: str, key: str) -> None:
    assert check_user_name(name) == key


# -- who reaches what --------------------------------------------------------


def test_a_student_reads_their_workspace_and_the_library_only(root: Path) -> None:
    alice = _student(root)
    assert [f.path for f in alice.folders] == [
        root.resolve() / "users" / "alice",
        root.resolve() / "library",
    ]
    assert {i.name for i in alice.own.sessions()} == {
        "tiny.session",
        "alice-only.session",
    }
    assert alice.file("tiny.session", library=True).parent.name == "library"
    assert alice.own.writable and alice.library is not None
    assert not alice.library.writable
    bob = _student(root, "bob")
    assert {i.name for i in bob.own.sessions()} == {"tiny.session"}
    with pytest.raises(AccessError, match="no session 'alice-only.session'"):
        bob.file("alice-only.session")
    # Another user's file is in none of bob's folders.
    assert bob.find(root / "users" / "alice" / "alice-only.session") is None
    assert bob.find(root / "users" / "bob" / "tiny.session") is bob.own


def test_a_student_cannot_change_or_add_to_the_library(
    root: Path, recorded: Path
) -> None:
    alice = _student(root)
    assert alice.library is not None
    before = (root / "library" / "tiny.session").read_bytes()
    with pytest.raises(AccessError, match="read-only for you"):
        alice.library.set_title("tiny.session", "Mine now")
    with pytest.raises(AccessError, match="read-only for you"):
        alice.publish(alice.file("tiny.session"), "new.session")
    with pytest.raises(AccessError, match="read-only for you"):
        alice.library.add_copy(recorded, "new.session")
    assert (root / "library" / "tiny.session").read_bytes() == before
    assert sorted(p.name for p in (root / "library").iterdir()) == ["tiny.session"]


def test_an_instructor_copies_a_session_into_the_library(root: Path) -> None:
    teacher = Workspace.for_user(root, User("teacher", instructor=True))
    source = root / "users" / "alice" / "alice-only.session"
    # Not in the instructor's folders: refused even for an instructor.
    with pytest.raises(AccessError, match="not in your folders"):
        teacher.publish(source, "shared.session")
    shutil.copy(source, teacher.own.path / "mine.session")
    path = teacher.publish(teacher.own.path / "mine.session", "shared.session")
    assert path == root.resolve() / "library" / "shared.session"
    with Session(path) as session:
        assert session.title == "Tiny <xor>" and session.n_steps == 6
    with pytest.raises(SessionError, match="already in the class library"):
        teacher.publish(teacher.own.path / "mine.session", "shared.session")
    info = teacher.library.set_title("shared.session", "For everyone")  # type: ignore[union-attr]
    assert info.title == "For everyone"
    assert not [p for p in (root / "library").iterdir() if p.name.startswith(".")]
    # A student now sees it, and still cannot change it.
    alice = _student(root)
    assert "shared.session" in {i.name for i in alice.library.sessions()}  # type: ignore[union-attr]


def test_a_link_in_a_workspace_is_never_followed(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.session"
    shutil.copy(root / "library" / "tiny.session", outside)
    own = root / "users" / "alice"
    (own / "link.session").symlink_to(outside)
    (own / "inside-link.session").symlink_to(own / "tiny.session")
    (own / "passwd.session").symlink_to("/etc/passwd")
    alice = _student(root)
    names = {i.name for i in alice.own.sessions()}
    assert names == {"tiny.session", "alice-only.session"}
    for name in ("link.session", "inside-link.session", "passwd.session"):
        with pytest.raises(AccessError):
            alice.file(name)
        assert alice.find(own / name) is None
        with pytest.raises(AccessError):
            alice.own.set_title(name, "x")
    # A folder in place of a file is not a session either.
    (own / "dir.session").mkdir()
    with pytest.raises(AccessError):
        alice.file("dir.session")


def test_a_workspace_or_library_that_is_a_link_is_refused(
    root: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, root / "users" / "mallory")
    with pytest.raises(AccessError, match="is a link"):
        _student(root, "mallory")
    shutil.rmtree(root / "library")
    os.symlink(elsewhere, root / "library")
    with pytest.raises(AccessError, match="is a link"):
        _student(root, "alice")


def test_class_folder_refuses_parts_that_leave_the_root(tmp_path: Path) -> None:
    for part in ("..", ".", "a/b", "", "x\0"):
        with pytest.raises(AccessError, match="not a plain folder name"):
            class_folder(tmp_path, "users", part)
    (tmp_path / "users").mkdir()
    (tmp_path / "users" / "file").write_text("x")
    with pytest.raises((AccessError, FileExistsError)):
        class_folder(tmp_path, "users", "file")


def test_a_new_workspace_is_private_to_the_server(root: Path) -> None:
    workspace = _student(root, "carol")
    assert workspace.own.path.is_dir()
    assert workspace.own.path.stat().st_mode & 0o077 == 0
    assert workspace.own.sessions() == []


def test_a_single_folder_workspace_has_no_library(tmp_path: Path) -> None:
    workspace = Workspace.single(tmp_path)
    assert workspace.library is None and workspace.user is None
    assert workspace.folders == (workspace.own,)
    with pytest.raises(AccessError, match="no class library"):
        workspace.file("x.session", library=True)
    with pytest.raises(AccessError, match="no class library"):
        workspace.publish(tmp_path / "x.session", "x.session")


def test_keep_never_replaces_a_file_and_cleans_up(tmp_path: Path) -> None:
    folder = SessionFolder(tmp_path, label="your workspace")
    (tmp_path / "taken.session").write_bytes(b"old")

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"new")

    def refuse(tmp: Path) -> None:
        raise SessionError("bad file")

    with pytest.raises(SessionError, match="already in your workspace"):
        folder.keep("taken.session", write, lambda tmp: None)
    with pytest.raises(SessionError, match="bad file"):
        folder.keep("new.session", write, refuse)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.session"]
    assert (tmp_path / "taken.session").read_bytes() == b"old"
    read_only = SessionFolder(tmp_path, writable=False, label="the class library")
    with pytest.raises(AccessError, match="cannot add files to the class library"):
        read_only.keep("other.session", write, lambda tmp: None)


def test_add_copy_refuses_a_damaged_source(tmp_path: Path) -> None:
    bad = tmp_path / "bad.session"
    bad.write_bytes(b"not sqlite")
    target = SessionFolder(tmp_path / "lib")
    with pytest.raises(SessionError, match="not an SQLite file"):
        target.add_copy(bad, "copy.session")
    assert not (tmp_path / "lib" / "copy.session").exists()


# -- roles -------------------------------------------------------------------


def test_roles_come_from_the_users_file(root: Path, tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    add_user(users, "alice", "password-a")
    add_user(users, "teacher", "password-t", instructor=True)
    access = ClassAccess(root, users)
    assert access.user("alice") == User("alice", False)
    assert access.user("Teacher") == User("teacher", True)
    assert access.workspace("teacher").library.writable  # type: ignore[union-attr]
    assert not access.workspace("alice").library.writable  # type: ignore[union-attr]
    with pytest.raises(AccessError, match="no account"):
        access.user("mallory")
    for nobody in (None, "", "guest"):
        with pytest.raises(AccessError, match="not signed in"):
            access.user(nobody)
    with pytest.raises(UsersFileError, match="not a user name"):
        access.user("../alice")


def test_oauth_roles_come_from_the_instructor_list(root: Path) -> None:
    access = ClassAccess(root, None, frozenset({"Prof@School.edu"}))
    assert access.user("prof@school.edu").instructor
    assert access.user("PROF@school.edu").instructor
    student = access.user("kid@school.edu")
    assert not student.instructor
    workspace = access.workspace("kid@school.edu")
    assert workspace.own.path == root.resolve() / "users" / "kid@school.edu"
