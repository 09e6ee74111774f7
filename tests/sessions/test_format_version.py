"""The format version in a session's metadata must agree with the file's.

``PRAGMA user_version`` and ``meta.format_version`` both state the format; a
file whose two versions disagree was altered, and one that claims a newer
format must be refused with the "newer glassnet" message, not opened and
reported as format 1.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import Session, record, verify
from sessions.datasets import load_dataset
from sessions.errors import SessionFormatError
from sessions.schema import FORMAT_VERSION, upgrade
from ui.cli import main


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a tiny intact session (xor, 2-2-1, 2 full-batch steps)."""
    path = tmp_path_factory.mktemp("fmt") / "good.session"
    data = load_dataset("xor", n_samples=8, seed=0)
    spec = NetworkSpec(2, (LayerSpec(2, "tanh"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(loss="bce", optimizer="gd", lr=0.5, epochs=2)
    assert record(spec, config, data, path) == "completed"
    return path


def with_meta_version(good: Path, tmp_path: Path, value_json: str) -> Path:
    """Return a copy of ``good`` whose meta.format_version is ``value_json``."""
    path = tmp_path / "altered.session"
    path.write_bytes(good.read_bytes())
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "UPDATE meta SET value = ? WHERE key = 'format_version'", (value_json,)
        )
    con.close()
    return path


def test_an_intact_file_opens_with_its_format(good: Path) -> None:
    with Session(good) as session:
        assert session.format_version == FORMAT_VERSION
        assert session.meta["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 99])
def test_a_newer_format_in_the_metadata_is_refused(
    good: Path, tmp_path: Path, version: int
) -> None:
    path = with_meta_version(good, tmp_path, str(version))
    with pytest.raises(SessionFormatError) as err:
        Session(path)
    message = str(err.value)
    assert message.startswith(f"{path} ")
    assert f"session format {version}" in message
    assert "from a newer glassnet" in message
    assert "Upgrade glassnet" in message
    assert "unreadable metadata" not in message


def test_a_newer_format_is_a_one_line_error_in_info(
    capsys: pytest.CaptureFixture[str], good: Path, tmp_path: Path
) -> None:
    path = with_meta_version(good, tmp_path, "99")
    assert main(["info", str(path)]) == 1
    captured = capsys.readouterr()
    assert "format 1" not in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("glassnet: ")
    assert "from a newer glassnet" in lines[0]


@pytest.mark.parametrize("value_json", ["0", '"1"', "1.5", "null", "NaN", "true"])
def test_a_metadata_version_that_disagrees_is_refused(
    good: Path, tmp_path: Path, value_json: str
) -> None:
    path = with_meta_version(good, tmp_path, value_json)
    with pytest.raises(SessionFormatError) as err:
        Session(path)
    message = str(err.value)
    assert message.startswith(f"{path} ")
    assert "format_version" in message
    assert f"user_version {FORMAT_VERSION}" in message
    assert "altered" in message


FORMAT_1 = Path(__file__).parents[1] / "data" / "format1"


@pytest.mark.parametrize("name", ["moons-momentum.session", "iris-adam.session"])
def test_a_format_1_file_opens_replays_and_verifies(name: str) -> None:
    # Format 1 evaluated the whole training set after every epoch; its runs
    # must replay with that rule, or every epoch would differ from the file.
    path = FORMAT_1 / name
    with Session(path) as session:
        assert session.format_version == 1
        assert session.config.train_metrics == "evaluation"
        assert session.n_steps == session.plan.total_steps
        for step in range(session.n_steps):
            session.step_events(step)
    report = verify(path)
    assert report.ok, report.summary()


def test_upgrading_a_format_1_file_names_its_training_metrics(tmp_path: Path) -> None:
    path = tmp_path / "old.session"
    path.write_bytes((FORMAT_1 / "moons-momentum.session").read_bytes())
    con = sqlite3.connect(path)
    with con:
        upgrade(con, 1)
    con.close()
    with Session(path) as session:
        assert session.format_version == FORMAT_VERSION
        assert session.meta["format_version"] == FORMAT_VERSION
        assert session.config.train_metrics == "evaluation"
    assert verify(path).ok


def test_a_new_run_records_its_training_metrics_rule(good: Path) -> None:
    with Session(good) as session:
        assert session.config.train_metrics == "batches"
    con = sqlite3.connect(good)
    (text,) = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    con.close()
    assert json.loads(text)["train_metrics"] == "batches"
