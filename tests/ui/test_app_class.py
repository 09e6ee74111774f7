"""The app served to a class, without a browser: the signed-in name picks folders."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import panel as pn
import pytest

import ui.app
from sessions.users import add_user
from sessions.workspace import ClassAccess, class_folder
from ui.app import App, create_app


@pytest.fixture
def root(tmp_path: Path, demo_dir: Path) -> Path:
    """A class folder with the demo in its library."""
    root = tmp_path / "class"
    shutil.copy(
        demo_dir / "demo.session", class_folder(root, "library") / "demo.session"
    )
    return root


def _signed_in(monkeypatch: pytest.MonkeyPatch, name: str | None) -> None:
    """Make ``pn.state.user`` answer ``name``, as Panel does after a sign-in."""
    monkeypatch.setattr(type(pn.state), "user", property(lambda self: name))


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[App]:
    """Return the list of every :class:`App` that ``create_app`` builds."""
    apps: list[App] = []

    class Recorded(App):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            apps.append(self)

    monkeypatch.setattr(ui.app, "App", Recorded)
    return apps


def test_an_oauth_user_gets_a_workspace_named_after_them(
    root: Path, monkeypatch: pytest.MonkeyPatch, made: list[App]
) -> None:
    _signed_in(monkeypatch, "Kid@School.edu")
    access = ClassAccess(root.resolve(), None, frozenset({"prof@school.edu"}))
    template = create_app(access=access)
    library = made[-1].library
    assert library.workspace.own.path == root.resolve() / "users" / "kid@school.edu"
    assert not library.workspace.library.writable
    # The demo of the library is open; nothing was written into the workspace.
    assert library.state.session.path == root.resolve() / "library" / "demo.session"
    assert list(library.workspace.own.path.iterdir()) == []
    header = " ".join(str(getattr(h, "object", "")) for h in template.header)
    assert "kid@school.edu (student)" in header and "Sign out" in header

    _signed_in(monkeypatch, "prof@school.edu")
    create_app(access=access)
    library = made[-1].library
    assert library.workspace.library.writable


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "You are not signed in"),
        ("guest", "You are not signed in"),
        ("../alice", "is not a user name"),
        ("mallory", "has no account in this class"),
    ],
)
def test_the_app_refuses_anyone_without_an_account(
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str | None,
    message: str,
) -> None:
    users = tmp_path / "users.json"
    add_user(users, "alice", "alice-pass")
    _signed_in(monkeypatch, name)
    page = create_app(access=ClassAccess(root.resolve(), users))
    assert isinstance(page, pn.Column)
    assert message in page[1].object
    assert list((root / "users").glob("*")) == []  # no workspace was made


def test_a_user_removed_from_the_file_is_refused_with_a_valid_cookie(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = tmp_path / "users.json"
    add_user(users, "alice", "alice-pass")
    access = ClassAccess(root.resolve(), users)
    _signed_in(monkeypatch, "alice")
    assert not isinstance(create_app(access=access), pn.Column)
    add_user(users, "bob", "bob-passwd")
    users.write_text(users.read_text().replace('"alice"', '"alice2"'))
    assert "no account" in create_app(access=access)[1].object
