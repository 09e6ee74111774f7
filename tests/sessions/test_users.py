"""The users file of a class: salted hashes, never passwords; bad files refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sessions.users import (
    User,
    UsersFileError,
    add_user,
    find_user,
    hash_password,
    read_users,
    remove_user,
    verify_password,
)


def test_a_hash_is_salted_and_verifies_only_its_password() -> None:
    first = hash_password("correct horse")
    second = hash_password("correct horse")
    assert first != second  # a new salt each time
    assert first.startswith("scrypt$16384$8$1$")
    assert "correct horse" not in first
    assert verify_password("correct horse", first)
    assert verify_password("correct horse", second)
    assert not verify_password("correct hors", first)
    assert not verify_password("Correct horse", first)
    assert not verify_password("", first)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain-text-password",
        "scrypt$16384$8$1$salt",
        "md5$1$1$1$AAAA$AAAA",
        "scrypt$x$8$1$AAAA$AAAA",
        "scrypt$16384$8$1$!!!!$AAAA",
        "scrypt$16384$8$1$AAAA$",
        "scrypt$1073741824$8$1$AAAA$AAAA",  # a cost that would exhaust the server
        "scrypt$16384$8$1000$AAAA$AAAA",
    ],
)
def test_a_malformed_hash_never_matches(stored: str) -> None:
    assert not verify_password("plain-text-password", stored)
    assert not verify_password("", stored)


def test_add_user_keeps_hashes_only_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "class" / "users.json"
    assert add_user(path, "Alice", "s3cret-pass") == User("alice", False)
    assert add_user(path, "teacher", "t3acher-pass", instructor=True).instructor
    text = path.read_text()
    assert "s3cret-pass" not in text and "t3acher-pass" not in text
    assert path.stat().st_mode & 0o077 == 0
    accounts = read_users(path)
    assert {k: v["role"] for k, v in accounts.items()} == {
        "alice": "student",
        "teacher": "instructor",
    }
    assert find_user(path, "alice", "s3cret-pass") == User("alice", False)
    assert find_user(path, "ALICE", "s3cret-pass") == User("alice", False)
    assert find_user(path, "teacher", "t3acher-pass") == User("teacher", True)
    assert find_user(path, "alice", "t3acher-pass") is None
    assert find_user(path, "nobody", "s3cret-pass") is None
    assert find_user(path, "../alice", "s3cret-pass") is None
    assert find_user(path, "alice\0", "s3cret-pass") is None
    # Adding again replaces the password and the role.
    add_user(path, "alice", "new-password", instructor=True)
    assert find_user(path, "alice", "s3cret-pass") is None
    assert find_user(path, "alice", "new-password") == User("alice", True)
    remove_user(path, "alice")
    assert find_user(path, "alice", "new-password") is None
    with pytest.raises(UsersFileError, match="no user 'alice'"):
        remove_user(path, "alice")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".users-")]


def test_short_or_huge_passwords_and_bad_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    with pytest.raises(UsersFileError, match="8 to 1024 characters; this one has 5"):
        add_user(path, "alice", "short")
    with pytest.raises(UsersFileError, match="8 to 1024"):
        add_user(path, "alice", "x" * 2000)
    with pytest.raises(UsersFileError, match="not a user name"):
        add_user(path, "../../etc", "long-enough")
    assert not path.exists()


def test_a_missing_users_file_holds_no_accounts(tmp_path: Path) -> None:
    assert read_users(tmp_path / "none.json") == {}
    assert find_user(tmp_path / "none.json", "alice", "whatever1") is None


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json", "not a readable users file"),
        ("[1, 2]", "not a glassnet users file"),
        ('{"users": {}}', "not a glassnet users file"),
        ('{"format": "glassnet-users", "version": 9, "users": {}}', "version 9"),
        (
            '{"format": "glassnet-users", "version": 1, "users": {"alice": "pw"}}',
            "malformed entry for 'alice'",
        ),
        (
            '{"format": "glassnet-users", "version": 1, "users": '
            '{"alice": {"password": "x", "role": "admin"}}}',
            "malformed entry",
        ),
        (
            '{"format": "glassnet-users", "version": 1, "users": '
            '{"../x": {"password": "x", "role": "student"}}}',
            "not a user name",
        ),
        (
            '{"format": "glassnet-users", "version": 1, "users": '
            '{"Alice": {"password": "x", "role": "student"}}}',
            "malformed entry",
        ),
    ],
)
def test_a_malformed_users_file_is_refused_with_a_reason(
    tmp_path: Path, content: str, match: str
) -> None:
    path = tmp_path / "users.json"
    path.write_text(content)
    with pytest.raises(UsersFileError, match=match):
        read_users(path)


def test_a_plain_text_password_in_the_file_never_signs_in(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    data = {
        "format": "glassnet-users",
        "version": 1,
        "users": {"alice": {"password": "letmein123", "role": "student"}},
    }
    path.write_text(json.dumps(data))
    assert find_user(path, "alice", "letmein123") is None
