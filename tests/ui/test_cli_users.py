"""``glassnet users`` and the sign-in flags of ``glassnet serve``, run in-process."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import panel as pn
import pytest

from sessions.users import find_user
from sessions.workspace import ClassAccess
from ui.auth import PasswordAuthProvider
from ui.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Return ``cli(argv, stdin="")``: run glassnet; give its code, output, errors."""

    def run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_users_add_list_remove(tmp_path: Path, cli: Run) -> None:
    users = str(tmp_path / "users.json")
    add = ["users", "add", "--file", users, "--password-stdin"]
    code, out, _ = cli([*add, "Alice"], "alice-pass\n")
    assert code == 0 and out == f"Saved alice (student) in {users}.\n"
    code, out, _ = cli([*add, "teacher", "--instructor"], "teach-pass\n")
    assert code == 0 and "teacher (instructor)" in out
    assert "alice-pass" not in Path(users).read_text()
    assert find_user(users, "alice", "alice-pass") is not None
    code, out, _ = cli(["users", "list", "--file", users])
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["alice", "student"],
        ["teacher", "instructor"],
    ]
    code, out, _ = cli(["users", "remove", "alice", "--file", users])
    assert code == 0 and "workspace folder stays on disk" in out
    assert find_user(users, "alice", "alice-pass") is None


def test_users_add_refuses_bad_names_and_passwords(tmp_path: Path, cli: Run) -> None:
    users = str(tmp_path / "users.json")
    add = ["users", "add", "--file", users, "--password-stdin"]
    code, _, err = cli([*add, "../root"], "long-enough\n")
    assert code == 1 and err.startswith("glassnet: '../root' is not a user name")
    code, _, err = cli([*add, "bob"], "short\n")
    assert code == 1 and "8 to 1024 characters" in err
    assert not Path(users).exists()


def test_users_add_asks_twice_and_refuses_different_passwords(
    tmp_path: Path, cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["first-password", "other-password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    users = str(tmp_path / "users.json")
    code, _, err = cli(["users", "add", "bob", "--file", users])
    assert code == 1 and "two passwords differ" in err
    answers = iter(["same-password", "same-password"])
    code, _, _ = cli(["users", "add", "bob", "--file", users])
    assert code == 0 and find_user(users, "bob", "same-password") is not None


@pytest.mark.parametrize(
    ("flags", "match"),
    [
        (["--users", "USERS", "--oauth-provider", "github"], "not both"),
        (["--instructors", "prof"], "needs accounts"),
        (["--users", "USERS"], "holds no accounts"),
        (["--oauth-provider", "github", "--instructors", "../x"], "not a user name"),
        (
            ["--oauth-provider", "azure", "--oauth-extra-params", "[1]"],
            "takes a JSON object",
        ),
    ],
)
def test_serve_refuses_inconsistent_sign_in_flags(
    tmp_path: Path,
    cli: Run,
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    match: str,
) -> None:
    monkeypatch.setattr(pn, "serve", lambda *a, **k: pytest.fail("served"))
    flags = [str(tmp_path / "u.json") if f == "USERS" else f for f in flags]
    argv = ["serve", "--sessions", str(tmp_path / "c"), "--no-show", *flags]
    code, _, err = cli(argv)
    assert code == 1 and match in err


class _NotServing:
    """What the fake ``pn.serve`` returns: a server that starts nothing."""

    class io_loop:  # noqa: N801 - stands in for the attribute of a real server
        @staticmethod
        def start() -> None:
            pass

    def start(self) -> None:
        pass


def _served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace ``pn.serve`` by a recorder of its arguments."""
    seen: dict[str, Any] = {}

    def serve(apps: Any, **kw: Any) -> _NotServing:
        seen.update(apps=apps, **kw)
        return _NotServing()

    monkeypatch.setattr(pn, "serve", serve)
    return seen


def test_serve_with_a_users_file_signs_in_with_hashed_passwords(
    tmp_path: Path, cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = tmp_path / "users.json"
    cli(
        ["users", "add", "alice", "--file", str(users), "--password-stdin"],
        "alice-pass\n",
    )
    seen = _served(monkeypatch)
    monkeypatch.delenv("PANEL_COOKIE_SECRET", raising=False)
    root = tmp_path / "class"
    argv = ["serve", "--sessions", str(root), "--users", str(users), "--no-show"]
    code, out, _ = cli(argv)
    assert code == 0
    assert "sign-in with the passwords of" in out
    provider = seen["auth_provider"]
    assert isinstance(provider, PasswordAuthProvider)
    assert provider.users_file == users.resolve()
    assert provider.login_handler.users_file == users.resolve()
    assert len(seen["cookie_secret"]) >= 32
    assert "basic_auth" not in seen  # Panel's plain-text password file is unused
    # The demo is recorded into the class library, no workspace exists yet.
    assert (root / "library" / "demo.session").is_file()
    assert list((root / "users").iterdir()) == []
    # Nobody signed in (no cookie): the app refuses instead of opening a folder.
    page = seen["apps"]["app"]()
    assert "not signed in" in page[1].object


def test_serve_with_oauth_passes_panel_its_provider_settings(
    tmp_path: Path, cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _served(monkeypatch)
    argv = [
        "serve", "--sessions", str(tmp_path / "c"), "--no-show",
        "--oauth-provider", "azure", "--oauth-key", "id", "--oauth-secret", "s",
        "--oauth-extra-params", json.dumps({"tenant": "t"}),
        "--cookie-secret", "k" * 40, "--instructors", "Prof@School.edu,ta",
        "--allow-websocket-origin", "glassnet.school.edu",
    ]  # fmt: skip
    code, out, _ = cli(argv)
    assert code == 0 and "sign-in through azure" in out
    assert seen["oauth_provider"] == "azure"
    assert seen["oauth_key"] == "id" and seen["oauth_secret"] == "s"
    assert seen["oauth_extra_params"] == {"tenant": "t"}
    assert seen["cookie_secret"] == "k" * 40
    assert "auth_provider" not in seen
    assert "glassnet.school.edu" in seen["websocket_origin"]


def test_class_access_of_oauth_has_the_instructors(tmp_path: Path) -> None:
    access = ClassAccess(tmp_path, None, frozenset({"prof@school.edu", "ta"}))
    assert access.user("TA").instructor and not access.user("kid").instructor
