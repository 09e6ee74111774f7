"""``glassnet verify``: the hash chain first, then the re-run; exit 1 if one fails."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ui.cli import main

FORMAT_1 = Path(__file__).parents[1] / "data" / "format1"


def verify_cli(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, list[str]]:
    """Run ``glassnet verify PATH --quiet``; return its exit code and output lines."""
    capsys.readouterr()
    code = main(["verify", str(path), "--quiet"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out.splitlines()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Record a short moons run with the CLI."""
    path = tmp_path_factory.mktemp("trust") / "moons.session"
    argv = ["record", "--dataset", "moons", "--epochs", "6", "--seed", "3"]
    assert main([*argv, "--out", str(path), "--quiet"]) == 0
    return path


def edited(src: Path, tmp_path: Path, sql: str, *args: object) -> Path:
    path = tmp_path / "edited.session"
    shutil.copy(src, path)
    con = sqlite3.connect(path)
    with con:
        con.execute(sql, args)
    con.close()
    return path


def test_an_untouched_file_passes_with_its_chain_named_first(
    capsys: pytest.CaptureFixture[str], recorded: Path
) -> None:
    code, lines = verify_cli(capsys, recorded)
    assert code == 0, lines
    assert lines[0].startswith(f"{recorded}: hash chain intact, ")
    assert lines[-1] == "OK: every recorded value reproduces bit for bit."


def test_a_file_edited_without_changing_a_number_fails_on_its_chain(
    capsys: pytest.CaptureFixture[str], recorded: Path, tmp_path: Path
) -> None:
    sql = "UPDATE steps SET recorded_at = recorded_at - 60 WHERE step = 2"
    code, lines = verify_cli(capsys, edited(recorded, tmp_path, sql))
    assert code == 1
    assert "edited after recording: link " in lines[0]
    assert lines[0].endswith(") does not match")
    # The numbers themselves still reproduce, and the report says so.
    assert lines[-1] == "OK: every recorded value reproduces bit for bit."


def test_an_edited_number_fails_both_and_names_the_step(
    capsys: pytest.CaptureFixture[str], recorded: Path, tmp_path: Path
) -> None:
    con = sqlite3.connect(recorded)
    (blob,) = con.execute("SELECT summary FROM steps WHERE step = 4").fetchone()
    con.close()
    values = np.frombuffer(blob, "<f8").copy()
    values[1] = np.nextafter(values[1], -np.inf)
    path = edited(
        recorded,
        tmp_path,
        "UPDATE steps SET summary = ? WHERE step = 4",
        values.tobytes(),
    )
    code, lines = verify_cli(capsys, path)
    assert code == 1
    assert "edited after recording: link " in lines[0]
    assert any(line.startswith("DIFFERENT: step 4:") for line in lines)
    assert lines[-1].endswith("the file was changed after recording.")


def test_a_difference_lists_the_software_that_differs(
    capsys: pytest.CaptureFixture[str],
    recorded: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    con = sqlite3.connect(recorded)
    (blob,) = con.execute("SELECT summary FROM steps WHERE step = 4").fetchone()
    con.close()
    values = np.frombuffer(blob, "<f8").copy()
    values[0] = np.nextafter(values[0], np.inf)
    path = edited(
        recorded,
        tmp_path,
        "UPDATE steps SET summary = ? WHERE step = 4",
        values.tobytes(),
    )
    # As if this machine had another NumPy than the one that recorded the run.
    recorded_with = np.__version__
    monkeypatch.setattr(np, "__version__", "0.0-other")
    code, lines = verify_cli(capsys, path)
    assert code == 1
    assert (
        f"  NumPy: recorded with {recorded_with}, this machine has 0.0-other" in lines
    )


@pytest.mark.parametrize("name", ["moons-momentum.session", "iris-adam.session"])
def test_a_format_1_file_passes_without_a_chain(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = FORMAT_1 / name
    code, lines = verify_cli(capsys, path)
    assert code == 0, lines
    assert lines[0] == f"{path}: no hash chain (format 1)"
