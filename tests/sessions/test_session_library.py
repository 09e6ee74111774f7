"""The session library: listing files from their metadata, damaged files, titles."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from sessions import Session, SessionError
from sessions.library import (
    MAX_TITLE_CHARS,
    check_name,
    describe_session,
    list_sessions,
    set_title,
)


@pytest.fixture
def folder(tmp_path: Path, recorded: Path) -> Path:
    shutil.copy(recorded, tmp_path / "tiny.session")
    return tmp_path


def test_describe_session_reads_the_metadata_of_a_recorded_run(recorded: Path) -> None:
    info = describe_session(recorded)
    with Session(recorded) as session:
        assert info.steps == session.n_steps
        assert info.status == session.status == "completed"
        assert info.total_steps == session.meta["total_steps"]
    assert info.damaged == ""
    assert info.title == "Tiny <xor>"
    assert info.description == "first"
    assert info.dataset == "xor"
    assert info.network == "2-4-1"
    assert info.name == "tiny.session"
    assert info.created_at.startswith("20")


def test_list_sessions_lists_damaged_files_with_a_reason(folder: Path) -> None:
    (folder / "empty.session").write_bytes(b"")
    (folder / "text.session").write_text("not a database")
    raw = (folder / "tiny.session").read_bytes()
    (folder / "cut.session").write_bytes(raw[:3000])
    con = sqlite3.connect(folder / "other.session")
    con.execute("CREATE TABLE t (x)")
    con.close()
    (folder / "notes.txt").write_text("ignored: not a session name")

    infos = {i.name: i for i in list_sessions(folder)}

    assert set(infos) == {
        "tiny.session",
        "empty.session",
        "text.session",
        "cut.session",
        "other.session",
    }
    assert infos["tiny.session"].damaged == ""
    assert "empty" in infos["empty.session"].damaged
    assert "not an SQLite file" in infos["text.session"].damaged
    assert "not a glassnet session" in infos["other.session"].damaged
    assert infos["cut.session"].damaged


def test_list_sessions_leaves_out_links_and_missing_folders(
    folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.session"
    shutil.copy(folder / "tiny.session", outside)
    (folder / "link.session").symlink_to(outside)

    assert [i.name for i in list_sessions(folder)] == ["tiny.session"]
    assert list_sessions(folder / "missing") == []


def test_set_title_writes_title_and_description_into_the_file(folder: Path) -> None:
    path = folder / "tiny.session"

    info = set_title(path, "  Renamed run ", "what we tried")

    assert info.title == "Renamed run"
    with Session(path) as session:
        assert session.title == "Renamed run"
        assert session.meta["description"] == "what we tried"
        assert session.n_steps == info.steps
        session.step_events(session.n_steps - 1)  # the run still replays exactly


def test_set_title_keeps_the_description_when_none(folder: Path) -> None:
    path = folder / "tiny.session"
    set_title(path, "Only the title")
    assert describe_session(path).description == "first"


@pytest.mark.parametrize(
    ("title", "description", "match"),
    [
        ("", None, "1 to 200 characters"),
        ("x" * (MAX_TITLE_CHARS + 1), None, "1 to 200 characters"),
        ("ok", "d" * 5001, "at most 5000"),
    ],
)
def test_set_title_refuses_bad_text(
    folder: Path, title: str, description: str | None, match: str
) -> None:
    with pytest.raises(SessionError, match=match):
        set_title(folder / "tiny.session", title, description)
    assert describe_session(folder / "tiny.session").title == "Tiny <xor>"


def test_set_title_refuses_a_damaged_file(folder: Path) -> None:
    bad = folder / "bad.session"
    bad.write_text("nonsense")
    with pytest.raises(SessionError, match="not an SQLite file"):
        set_title(bad, "New")


@pytest.mark.parametrize(
    "name",
    [
        "../evil.session",
        "/etc/passwd.session",
        "sub/dir.session",
        "..session",
        ".hidden.session",
        "run.txt",
        "a\\b.session",
        "",
    ],
)
def test_check_name_refuses_anything_but_a_plain_file_name(name: str) -> None:
    with pytest.raises(SessionError, match="not a session file name"):
        check_name(name)


def test_check_name_accepts_plain_names() -> None:
    assert check_name("Run 2_b-c.session") == "Run 2_b-c.session"


def test_a_damaged_file_is_described_by_its_name_not_its_folder(
    folder: Path,
) -> None:
    path = folder / "cut.session"
    path.write_bytes(b"not a session at all")
    info = describe_session(path)
    assert info.damaged.startswith("cut.session is ")
    assert str(folder) not in info.damaged
