"""The session library in the sidebar, without a browser: list, open, upload, title."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from sessions import Session, SessionError, record, recorder
from sessions.users import User
from sessions.workspace import Workspace, class_folder
from ui.library import MAX_UPLOAD_BYTES, SessionLibrary, keep_upload
from ui.state import AppState


@pytest.fixture
def folder(tmp_path: Path, demo_dir: Path) -> Path:
    shutil.copy(demo_dir / "demo.session", tmp_path / "demo.session")
    return tmp_path


@pytest.fixture
def library(folder: Path) -> SessionLibrary:
    state = AppState(sessions_dir=str(folder))
    assert state.open(folder / "demo.session")
    return SessionLibrary(state=state)


def _texts(library: SessionLibrary) -> list[str]:
    return [row[0].object for row in library.items]


def test_library_lists_sessions_and_damaged_files(folder: Path) -> None:
    (folder / "broken.session").write_text("<b>not</b> a session")
    library = SessionLibrary(state=AppState(sessions_dir=str(folder)))

    texts = _texts(library)
    assert len(texts) == 2
    demo = next(t for t in texts if "demo.session" in t)
    assert "Demo: Iris flowers, 4-16-3, Adam" in demo
    assert "iris" in demo and "4-16-3" in demo and "120/120 steps" in demo
    assert "completed" in demo
    broken = next(t for t in texts if "broken.session" in t)
    assert "damaged" in broken and "not an SQLite file" in broken
    buttons = {row[0].object.split("<b>")[1][:12]: row[1] for row in library.items}
    assert any(b.disabled for b in buttons.values())
    assert library.open("broken.session") is False
    assert "cannot be opened" in library.state.message


def test_library_shows_titles_as_text_never_html(library: SessionLibrary) -> None:
    assert library.save_title("<img src=x onerror=alert(1)>", "a & b")
    text = next(t for t in _texts(library) if "demo.session" in t)
    assert "<img" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_open_button_opens_the_listed_session(library: SessionLibrary) -> None:
    folder = Path(library.state.sessions_dir)
    shutil.copy(folder / "demo.session", folder / "copy.session")
    library.refresh_button.clicks += 1
    row = next(r for r in library.items if "copy.session" in r[0].object)
    row[1].clicks += 1
    assert library.state.session.path == folder / "copy.session"
    assert library.state.step == 0


def test_save_title_writes_the_file_and_updates_the_editor(
    library: SessionLibrary,
) -> None:
    library.title_input.value = "Iris, second try"
    library.description_input.value = "lr 0.01, 30 epochs"
    library.save_button.clicks += 1

    assert library.revision == 1
    path = Path(library.state.sessions_dir) / "demo.session"
    with Session(path) as session:
        assert session.title == "Iris, second try"
        assert session.meta["description"] == "lr 0.01, 30 epochs"
    assert library.state.session.title == "Iris, second try"
    assert any("Iris, second try" in t for t in _texts(library))


def test_save_title_refuses_an_empty_title(library: SessionLibrary) -> None:
    library.title_input.value = "   "
    library.save_button.clicks += 1
    assert "1 to 200 characters" in library.state.message
    assert library.revision == 0


def test_upload_through_the_widget_keeps_and_opens_the_file(
    library: SessionLibrary, demo_dir: Path
) -> None:
    content = (demo_dir / "demo.session").read_bytes()
    library.upload.filename = "shared.session"
    library.upload.value = content

    folder = Path(library.state.sessions_dir)
    assert (folder / "shared.session").read_bytes() == content
    assert library.state.session.path == folder / "shared.session"
    assert any("shared.session" in t for t in _texts(library))
    assert not list(folder.glob(".new-*"))


@pytest.mark.parametrize(
    ("filename", "content", "match"),
    [
        ("../escape.session", b"x", "names a folder"),
        ("/etc/evil.session", b"x", "names a folder"),
        ("..session", b"x", "not a session file name"),
        ("notes.txt", b"x", "not a session file name"),
        (None, None, "No file was uploaded"),
        ("big.session", b"\0" * (MAX_UPLOAD_BYTES + 1), "accepts session files up to"),
        ("garbage.session", b"hello", "garbage.session was not kept"),
        ("demo.session", b"x", "already in the library"),
    ],
)
def test_keep_upload_refuses_bad_uploads(
    folder: Path, filename: str | None, content: bytes | None, match: str
) -> None:
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(SessionError, match=match):
        keep_upload(folder, filename, content)
    assert sorted(p.name for p in folder.iterdir()) == before


def test_bad_upload_through_the_widget_gives_a_message(
    library: SessionLibrary,
) -> None:
    library.upload.filename = "fake.session"
    library.upload.value = b"SQLite format 3\x00 but nothing else"
    assert "fake.session was not kept" in library.state.message
    assert library.state.session.path.name == "demo.session"
    assert not (Path(library.state.sessions_dir) / "fake.session").exists()


def test_the_same_file_can_be_uploaded_again_under_a_new_name(
    library: SessionLibrary, demo_dir: Path
) -> None:
    content = (demo_dir / "demo.session").read_bytes()
    library.upload.param.update(filename="demo.session", value=content)
    assert "already in the library" in library.state.message
    assert library.upload.value is None
    library.upload.param.update(filename="again.session", value=content)
    assert library.state.session.path.name == "again.session"


def _entry(library: SessionLibrary, name: str) -> str | None:
    return next((t for t in _texts(library) if f"{name} ·" in t), None)


def test_a_session_opened_elsewhere_is_listed_without_refreshing(
    library: SessionLibrary,
) -> None:
    folder = Path(library.state.sessions_dir)
    shutil.copy(folder / "demo.session", folder / "new.session")
    assert _entry(library, "new.session") is None  # not listed yet
    assert library.state.open(folder / "new.session")  # as tab 5's Train does
    assert "120/120 steps" in _entry(library, "new.session")


def test_a_run_recorded_live_is_listed_then_updated_when_it_ends(
    library: SessionLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "COMMIT_INTERVAL", 0.0)  # each step readable
    state = library.state
    folder = Path(state.sessions_dir)
    with Session(folder / "demo.session") as demo:
        spec, config, data = demo.spec, demo.config, demo.dataset
    config = replace(config, epochs=3)  # 12 steps
    path = folder / "live.session"
    seen: list[str | None] = []

    def progress(trainer: object) -> None:
        # Open the file while it is written (once a step is readable).
        if state.session.path != path:
            try:
                session = Session(path)
            except SessionError:
                return
            if session.n_steps < 1:
                session.close()
                return
            state.set_session(session)
        else:
            state.refresh()
            library.update_live()  # what the app does each time it re-reads
        seen.append(_entry(library, "live.session"))

    record(spec, config, data, path, progress=progress)
    assert seen and "incomplete" in seen[0]  # listed as soon as it was opened
    assert all("completed" not in text for text in seen)
    state.refresh()  # the app's next look at the file reads its end
    library.update_live()
    text = _entry(library, "live.session")
    assert "12/12 steps" in text and "completed" in text


def test_a_file_too_large_is_refused_by_name_and_size_without_its_content(
    library: SessionLibrary, demo_dir: Path
) -> None:
    # The browser sends only the name and size of a file over the limit.
    assert library.upload.max_bytes == MAX_UPLOAD_BYTES
    library.upload.receive({"name": "big.session", "size": int(18.4 * 2**20)})
    assert library.state.message.startswith(
        "big.session is 18.4 MiB; the app accepts session files up to 12 MiB."
    )
    assert library.state.session.path.name == "demo.session"
    # A file within the limit arrives base64-encoded and is kept and opened.
    content = (demo_dir / "demo.session").read_bytes()
    data = base64.b64encode(content).decode()
    library.upload.receive({"name": "sent.session", "size": len(content), "data": data})
    assert library.state.session.path.name == "sent.session"


def test_a_session_changed_after_recording_is_not_kept(
    folder: Path, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    changed = tmp_path / "elsewhere" / "changed.session"
    shutil.copy(folder / "demo.session", changed)
    con = sqlite3.connect(changed)
    with con:
        (text,) = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        config = json.loads(text)
        config["lr"] = config["lr"] * 2
        con.execute(
            "UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),)
        )
    con.close()
    with pytest.raises(SessionError) as info:
        keep_upload(folder, "changed.session", changed.read_bytes())
    text = str(info.value)
    assert text.startswith("changed.session was not kept: Step 0 of changed.session")
    assert "the file was changed after recording or is damaged" in text
    assert str(folder) not in text and ".new-" not in text
    assert not (folder / "changed.session").exists()


# -- served to a class: a workspace and the class library ----------------------


@pytest.fixture
def class_root(tmp_path: Path, demo_dir: Path) -> Path:
    """A class folder: the demo in the library, alice's own run in her workspace."""
    root = tmp_path / "class"
    shutil.copy(
        demo_dir / "demo.session", class_folder(root, "library") / "demo.session"
    )
    own = class_folder(root, "users", "alice")
    shutil.copy(demo_dir / "demo.session", own / "mine.session")
    return root


def _class_library(root: Path, user: User) -> SessionLibrary:
    workspace = Workspace.for_user(root, user)
    state = AppState(sessions_dir=str(workspace.own.path))
    return SessionLibrary(state=state, workspace=workspace)


def test_a_student_sees_their_workspace_and_the_library_read_only(
    class_root: Path,
) -> None:
    library = _class_library(class_root, User("alice"))
    assert [r[0].object for r in library.items][0].count("mine.session") == 1
    assert len(library.items) == 1 and len(library.library_items) == 1
    assert "demo.session" in library.library_items[0][0].object
    layout_widgets = list(library.__panel__())
    assert library.publish_button not in layout_widgets
    assert any("(read-only)" in getattr(w, "object", "") for w in layout_widgets)

    demo = class_root / "library" / "demo.session"
    before = demo.read_bytes()
    library.library_items[0][1].clicks += 1  # Open
    assert library.state.session.path == demo.resolve()
    assert library.save_button.disabled and library.title_input.disabled
    assert library.read_only_note.visible
    # The server refuses even if the button's click arrives anyway.
    library.save_button.clicks += 1
    assert "read-only for you" in library.state.message
    assert library.save_title("Mine now", None) is False
    assert library.publish("copy.session") is False
    assert "read-only for you" in library.state.message
    assert demo.read_bytes() == before
    assert [p.name for p in demo.parent.glob("*.session")] == ["demo.session"]


def test_a_student_uploads_into_their_own_workspace(
    class_root: Path, demo_dir: Path
) -> None:
    library = _class_library(class_root, User("alice"))
    library.upload.param.update(
        filename="up.session", value=(demo_dir / "demo.session").read_bytes()
    )
    own = class_root / "users" / "alice"
    assert (own / "up.session").is_file()
    assert not (class_root / "library" / "up.session").exists()
    assert library.state.session.path == own / "up.session"
    assert not library.save_button.disabled  # her own file: she may retitle it
    assert library.save_title("My upload", None)


def test_students_never_see_each_others_sessions(class_root: Path) -> None:
    bob = _class_library(class_root, User("bob"))
    texts = [r[0].object for r in bob.items]
    assert texts == ["<i>No session files in this folder yet.</i>"]
    assert bob.open("mine.session") is False
    assert bob.state.session is None


def test_an_instructor_copies_the_open_session_into_the_library(
    class_root: Path, demo_dir: Path
) -> None:
    library = _class_library(class_root, User("teacher", instructor=True))
    assert library.publish_button in list(library.__panel__())
    own = class_root / "users" / "teacher"
    shutil.copy(demo_dir / "demo.session", own / "lesson.session")
    library.refresh()
    assert library.open("lesson.session")
    assert library.publish_name.value == "lesson.session"
    library.publish_name.value = "lesson-1.session"
    library.publish_button.clicks += 1
    assert (class_root / "library" / "lesson-1.session").is_file()
    assert any("lesson-1.session" in r[0].object for r in library.library_items)
    # Instructors may retitle library sessions.
    assert library.open("lesson-1.session", library=True)
    assert not library.save_button.disabled
    assert library.save_title("Lesson 1", "for everyone")
    with Session(class_root / "library" / "lesson-1.session") as session:
        assert session.title == "Lesson 1"
    library.publish_name.value = "../escape.session"
    library.publish_button.clicks += 1
    assert "not a session file name" in library.state.message
