"""`glassnet export`: metrics to CSV, one recorded array to .npy, a notebook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sessions import Session
from ui.cli import main


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Record a small XOR run (2 epochs of 8 steps) with the CLI."""
    path = tmp_path_factory.mktemp("cli") / "xor.session"
    code = main(
        [
            "record",
            "--dataset",
            "xor",
            "--epochs",
            "2",
            "--batch-size",
            "20",
            "--optimizer",
            "adam",
            "--title",
            "XOR for export",
            "--out",
            str(path),
            "--quiet",
        ]
    )
    assert code == 0
    return path


def test_export_csv_into_a_folder_names_the_session_and_steps(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(recorded), "--csv", str(tmp_path)]) == 0
    path = tmp_path / "xor_metrics_steps0-15.csv"
    assert f"Saved {path}" in capsys.readouterr().out
    assert "XOR for export" in path.read_text().splitlines()[0]
    table = pd.read_csv(path, comment="#")
    with Session(recorded) as session:
        assert np.array_equal(table["loss"].to_numpy(), session.series().loss)


def test_export_npy_writes_the_picked_array(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "w.npy"
    args = ["export", str(recorded), "--npy", str(out), "--step", "9"]
    args += ["--event", "parameters_updated", "--layer", "2", "--name", "W"]
    assert main([*args, "--field", "after"]) == 0
    with Session(recorded) as session:
        (update,) = [
            e
            for e in session.step_events(9)
            if e.kind == "parameters_updated" and e.layer == 1 and e.name == "W"
        ]
    assert np.array_equal(np.load(out, allow_pickle=False), update.after)


def test_export_npy_into_a_folder_and_a_gradient_without_field(
    recorded: Path, tmp_path: Path
) -> None:
    args = ["export", str(recorded), "--npy", str(tmp_path), "--step", "3"]
    assert main([*args, "--event", "gradient_computed", "--layer", "1"]) == 1
    assert main([*args, "--event", "gradient_computed", "--name", "dy_hat"]) == 0
    saved = tmp_path / "xor_step3_gradient_computed_dy_hat_value.npy"
    assert np.load(saved, allow_pickle=False).shape == (20, 1)


def test_export_notebook_defaults_to_the_last_step(
    recorded: Path, tmp_path: Path
) -> None:
    assert main(["export", str(recorded), "--notebook", str(tmp_path)]) == 0
    book = json.loads((tmp_path / "xor_step15.ipynb").read_text())
    assert book["nbformat"] == 4
    assert book["metadata"]["glassnet"]["step"] == 15
    # The notebook opens the session by its path from the notebook's folder.
    setup = book["cells"][1]["source"]
    rel = Path("..") / recorded.parent.name / "xor.session"
    assert f'SESSION_FILE = Path("{rel}")' in setup


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ([], "Say what to export: --csv OUT, --npy OUT and/or --notebook OUT"),
        (["--npy", "x.npy"], "--npy needs --step N and --event KIND"),
        (["--csv", "m.csv", "--layer", "2"], "--layer picks the array of --npy; add"),
        (["--npy", "x.npy", "--step", "16", "--event", "loss_computed"], "Step 16 is"),
        (
            ["--npy", "x.npy", "--step", "2", "--event", "loss_computed"],
            "has several arrays; choose one with a field: y_hat, y, per_sample",
        ),
        (
            ["--npy", "x.npy", "--step", "2", "--event", "loss_computed"]
            + ["--field", "loss_name"],
            "holds no numbers in 'loss_name'",
        ),
        (
            ["--npy", "x.npy", "--step", "2", "--event", "epoch_completed"],
            "Step 2 has no epoch_completed event",
        ),
        (
            ["--npy", "x.npy", "--step", "2", "--event", "weighted_sum_computed"]
            + ["--layer", "3", "--field", "z"],
            "no weighted_sum_computed event with layer 3; it has: .* of layer 2",
        ),
        (["--notebook", "nb.ipynb", "--step", "99"], "Step 99 is not in xor.session"),
        (["--csv", "no/such/folder/m.csv"], "the folder no/such/folder does not exist"),
    ],
)
def test_export_errors_say_what_is_wrong(
    recorded: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    words: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(recorded), *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("glassnet: ")
    assert re.search(words, err), err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_export_keeps_an_existing_file_unless_overwrite(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.csv"
    out.write_text("mine")
    assert main(["export", str(recorded), "--csv", str(out)]) == 1
    assert "already exists; choose another path, or add --overwrite" in (
        capsys.readouterr().err
    )
    assert out.read_text() == "mine"
    assert main(["export", str(recorded), "--csv", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith("# glassnet per-step metrics")


def test_export_of_a_file_that_is_not_a_session_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "notes.session"
    bad.write_text("hello")
    assert main(["export", str(bad), "--csv", str(tmp_path)]) == 1
    assert "not a glassnet session" in capsys.readouterr().err
