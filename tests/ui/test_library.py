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
    assert not list(folder.glob(".upload-*"))


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
    assert str(folder) not in text and ".upload-" not in text
    assert not (folder / "changed.session").exists()
