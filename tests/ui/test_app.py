"""The assembled app without a browser: title, messages, following a live run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from engine.trainer import Trainer
from sessions import Recorder
from sessions.datasets import load_dataset
from ui.app import App, create_app, hide_paths
from ui.cli import main


def test_app_shows_the_session_title_and_messages_as_text(demo_dir: Path) -> None:
    app = App(demo_dir, None)
    assert "Demo: Iris flowers, 4-16-3, Adam" in app.title.object
    assert app.message_row.visible is False

    app.state.message = "bad <b>thing</b>"
    assert app.message_row.visible is True
    assert "bad &lt;b&gt;thing&lt;/b&gt;" in app.message.object
    app.dismiss.clicks += 1
    assert app.state.message == ""
    assert app.message_row.visible is False


def test_saving_a_title_updates_the_header(demo_dir: Path, tmp_path: Path) -> None:
    shutil.copy(demo_dir / "demo.session", tmp_path / "demo.session")
    app = App(tmp_path, None)
    assert app.library.save_title("Renamed", None)
    assert "Renamed" in app.title.object


def test_create_app_records_the_demo_into_an_empty_folder(tmp_path: Path) -> None:
    create_app(tmp_path / "new")
    assert (tmp_path / "new" / "demo.session").is_file()


def test_app_follows_a_run_still_being_recorded(tmp_path: Path) -> None:
    path = tmp_path / "live.session"
    data = load_dataset("xor", n_samples=40, seed=0)
    spec = NetworkSpec(2, (LayerSpec(4, "tanh"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(
        loss="bce", optimizer="sgd", lr=0.1, epochs=5, batch_size=8, seed=0
    )
    trainer = Trainer(spec, config, data)
    recorder = Recorder(path, trainer, keyframe_interval=2)
    trainer.begin()

    def train(n: int) -> None:
        for _ in range(n):
            recorder.before_step(trainer)
            trainer.train_step()
        recorder.before_step(trainer)  # closes the last step
        recorder.flush()

    train(3)
    app = App(tmp_path, path)
    assert app.state.session.status == "incomplete"
    assert app.cursor.slider.end == 2

    train(4)
    app.follow_tick()
    assert app.state.n_steps == 7
    assert app.cursor.slider.end == 6
    app.state.step = 6
    assert app.state.events[0].kind == "batch_sampled"

    trainer.end("stopped")
    recorder.close()
    app.follow_tick()
    assert app.state.session.status == "stopped"


def test_serve_refuses_a_bad_port_before_doing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--sessions", str(tmp_path / "s"), "--port", "0"]) == 1
    assert "--port takes 1 to 65535; got 0" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "/srv/glassnet/runs/zz.session is damaged or truncated (SQLite says: x).",
            "zz.session is damaged or truncated (SQLite says: x).",
        ),
        (
            "'runs/a.session' is not inside /srv/x/runs.",
            "'a.session' is not inside runs.",
        ),
        (
            "Step 3 of runs/b.session does not reproduce",
            "Step 3 of b.session does not reproduce",
        ),
        ("lr 0.1/0.2 and/or 1/2 stay", "lr 0.1/0.2 and/or 1/2 stay"),
    ],
)
def test_messages_name_files_without_the_server_folders(text: str, shown: str) -> None:
    assert hide_paths(text, "runs") == shown


def test_opening_a_damaged_file_shows_its_name_only(
    demo_dir: Path, tmp_path: Path
) -> None:
    shutil.copy(demo_dir / "demo.session", tmp_path / "demo.session")
    cut = tmp_path / "cut.session"
    cut.write_bytes((demo_dir / "demo.session").read_bytes()[:20_000])
    app = App(tmp_path, None)
    assert app.cursor.apply_moment(session="cut.session")
    assert app.message_row.visible is True
    assert "cut.session is damaged" in app.message.object
    assert str(tmp_path) not in app.message.object


def test_a_write_to_a_closed_page_is_dropped_quietly_and_other_errors_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio
    import gc

    from tornado.websocket import WebSocketClosedError

    from ui.app import _drop_writes_to_closed_pages

    async def closed() -> None:
        raise WebSocketClosedError

    async def broken() -> None:
        raise ValueError("a real failure")

    async def serve() -> list[dict[str, object]]:
        seen: list[dict[str, object]] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: seen.append(context))
        _drop_writes_to_closed_pages()
        _drop_writes_to_closed_pages()  # once per loop: not wrapped twice
        # Tasks whose exceptions nobody retrieves, as Panel's direct writes.
        for make in (closed, broken):
            task = loop.create_task(make())
            await asyncio.sleep(0)
            del task
        gc.collect()
        await asyncio.sleep(0)
        return seen

    with caplog.at_level("DEBUG", logger="ui.app"):
        seen = asyncio.run(serve())
    assert [type(c["exception"]).__name__ for c in seen] == ["ValueError"]
    assert "Dropped a message to a closed page" in caplog.text
