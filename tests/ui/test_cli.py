"""The ``glassnet`` command line, driven through ``ui.cli.main`` as a user would.

Every command is run in-process with its output captured; an error must end
in exit code 1 (or 2 for a flag argparse rejects) and a ``glassnet: ...``
line, never a traceback.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from sessions import FORMAT_VERSION, Session
from sessions.datasets import DATASETS
from ui.cli import main

CASES = Path("/work/shared/cases")


@dataclass
class Result:
    """What one command did: its exit code and what it printed."""

    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], argv: Sequence[str]) -> Result:
    """Run ``glassnet argv`` and return its exit code and output."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse rejects a flag
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def assert_one_line_error(result: Result, code: int, *words: str) -> str:
    """Fail unless a command failed with ``code`` and one ``glassnet: ...`` line."""
    assert result.code == code, (result.code, result.out, result.err)
    assert "Traceback" not in result.err, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{result.err}"
    assert lines[0].startswith("glassnet: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def assert_usage_error(result: Result, *words: str) -> str:
    """Fail unless argparse refused a flag: exit 2, an ``error:`` line, no traceback."""
    assert result.code == 2, (result.code, result.out, result.err)
    assert "Traceback" not in result.err, result.err
    last = result.err.strip().splitlines()[-1]
    assert re.match(r"glassnet( \w+)?: error: ", last), last
    for word in words:
        assert word in last, (word, last)
    return last


@pytest.fixture(scope="module")
def iris_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a session recorded by ``glassnet record`` (iris, 3 epochs)."""
    out = tmp_path_factory.mktemp("cli") / "iris.session"
    argv = ["record", "--dataset", "iris", "--epochs", "3", "--seed", "0"]
    code = main([*argv, "--out", str(out), "--quiet"])
    assert code == 0
    return out


# -- record -------------------------------------------------------------------


def test_record_trains_saves_and_says_how_to_inspect(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "iris.session"
    argv = ["record", "--dataset", "iris", "--epochs", "3", "--seed", "0"]
    result = run(capsys, [*argv, "--out", str(out)])
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert f"Saved {out}. Inspect it with:" in result.out
    for command in ("info", "verify"):
        assert f"glassnet {command} {out}" in result.out
    assert f"glassnet events {out} --step 0" in result.out
    assert "status: completed" in result.out
    assert "recorded   12 of 12 steps" in result.out  # 120 rows, batches of 32

    with Session(out) as session:
        assert session.status == "completed"
        assert session.config.epochs == 3
        assert session.config.seed == 0
        assert session.spec.sizes == (4, 16, 3)
        assert session.meta["dataset"]["name"] == "iris"

    # The commands it suggests work on the file it wrote.
    assert run(capsys, ["info", str(out)]).code == 0
    assert run(capsys, ["events", str(out), "--step", "0"]).code == 0
    assert run(capsys, ["verify", str(out), "--quiet"]).code == 0


def test_record_uses_the_flags_it_is_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "moons.session"
    result = run(
        capsys,
        [
            "record", "--dataset", "moons", "--n-samples", "60", "--hidden", "6,4",
            "--activation", "tanh", "--optimizer", "momentum", "--lr", "0.02",
            "--momentum", "0.8", "--l2", "0.001", "--dropout", "0.25", "--epochs", "2",
            "--batch-size", "full", "--seed", "7", "--title", "flags",
            "--keyframe-interval", "3", "--train-metrics", "evaluation",
            "--out", str(out), "--quiet",
        ],
    )  # fmt: skip
    assert result.code == 0, result.err
    with Session(out) as session:
        assert session.config.train_metrics == "evaluation"
        assert session.spec.sizes == (2, 6, 4, 1)
        assert [layer.activation for layer in session.spec.layers][:2] == [
            "tanh",
            "tanh",
        ]
        assert [layer.dropout for layer in session.spec.layers] == [0.25, 0.25, 0.0]
        config = session.config
        assert (config.optimizer, config.lr, config.momentum) == ("momentum", 0.02, 0.8)
        assert (config.l2, config.epochs, config.seed) == (0.001, 2, 7)
        assert config.batch_size is None
        assert session.meta["batch_size"] == 48  # 60 rows, 20% held out
        assert session.keyframe_interval == 3
        assert session.title == "flags"


def test_record_with_other_seeds_records_other_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    losses = []
    for seed in ("0", "0", "1"):
        out = tmp_path / f"seed{seed}-{len(losses)}.session"
        argv = ["record", "--dataset", "xor", "--epochs", "2", "--seed", seed]
        assert run(capsys, [*argv, "--out", str(out), "--quiet"]).code == 0
        with Session(out) as session:
            losses.append(session.series().loss.copy())
    assert np.array_equal(losses[0], losses[1])
    assert not np.array_equal(losses[0], losses[2])


def test_record_from_a_csv_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "cut.session"
    csv = CASES / "case15.csv"
    result = run(
        capsys,
        ["record", "--csv", str(csv), "--target", "cut", "--epochs", "4",
         "--out", str(out), "--quiet"],
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    with Session(out) as session:
        data = session.meta["dataset"]
        assert data["task"] == "multiclass"
        assert data["target_name"] == "cut"
        # Five string classes in sorted order, the space in "Very Good" kept.
        assert data["class_names"] == ["Fair", "Good", "Ideal", "Premium", "Very Good"]
        assert data["n_train"] + data["n_test"] == 9
        assert session.spec.sizes[-1] == 5
    info = run(capsys, ["info", str(out)])
    assert info.code == 0
    assert "classes    Fair, Good, Ideal, Premium, Very Good" in info.out
    assert run(capsys, ["verify", str(out), "--quiet"]).code == 0


def test_record_of_a_run_that_diverges_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Case C04: one linear unit, w = b = 0, full-batch GD with lr = 1 on y = 2x.
    out = tmp_path / "c04.session"
    result = run(
        capsys,
        ["record", "--csv", str(CASES / "case04.csv"), "--target", "y",
         "--hidden", "none", "--output-activation", "linear", "--init", "zeros",
         "--optimizer", "gd", "--lr", "1", "--epochs", "400", "--no-standardize",
         "--test-fraction", "0", "--out", str(out), "--quiet"],
    )  # fmt: skip
    assert result.code == 3, result.err
    assert "status: diverged" in result.out
    assert "Training diverged in epoch 154 (step 153)" in result.out
    assert "smaller learning rate" in result.out
    with Session(out) as session:
        assert session.status == "diverged"
        assert session.n_steps == 154


# -- info, events, verify, datasets --------------------------------------------


def test_info_summarizes_the_session(
    capsys: pytest.CaptureFixture[str], iris_session: Path
) -> None:
    result = run(capsys, ["info", str(iris_session)])
    assert result.code == 0
    assert result.out.splitlines()[0] == "iris 4-16-3"
    for text in (
        "4-16-3 (16 relu, 3 softmax); 131 parameters",
        "iris (multiclass): 120 train / 30 test rows, 4 features",
        "batch 32, 3 epochs, seed 0",
        "recorded   12 of 12 steps",
        "status: completed",
        "last       epoch 3,",
        f"format {FORMAT_VERSION}, keyframe every 10 steps",
        "classes    setosa, versicolor, virginica",
    ):
        assert text in result.out, text
    assert result.err == ""


def _headers(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


def test_events_of_a_step_print_every_event_of_it(
    capsys: pytest.CaptureFixture[str], iris_session: Path
) -> None:
    result = run(capsys, ["events", str(iris_session), "--step", "5"])
    assert result.code == 0, result.err
    with Session(iris_session) as session:
        events = session.step_events(5)
    headers = _headers(result.out)
    assert len(headers) == len(events)
    for header, event in zip(headers, events, strict=True):
        # Steps from 0, epochs from 1, as everywhere glassnet prints.
        assert header.startswith(f"#{event.seq} {event.kind} (step 5, epoch 2")
    assert headers[0].startswith(f"#{events[0].seq} batch_sampled")
    assert "step_completed" in headers[-1]


def test_events_of_step_0_start_with_the_session_start(
    capsys: pytest.CaptureFixture[str], iris_session: Path
) -> None:
    result = run(capsys, ["events", str(iris_session)])  # --step defaults to 0
    assert result.code == 0
    headers = _headers(result.out)
    assert headers[0] == "#0 session_started (step 0, epoch 1)"
    assert headers[1] == "#1 parameters_initialized (step 0, epoch 1 layer 0)"


def test_events_of_one_seq_print_that_event(
    capsys: pytest.CaptureFixture[str], iris_session: Path
) -> None:
    result = run(capsys, ["events", str(iris_session), "--seq", "42"])
    assert result.code == 0, result.err
    with Session(iris_session) as session:
        event = session.event(42)
    headers = _headers(result.out)
    assert len(headers) == 1
    assert headers[0].startswith(f"#42 {event.kind} (step {event.step}, ")
    for name in (
        ("a_prev", "W", "b", "z") if event.kind == "weighted_sum_computed" else ()
    ):
        assert f"    {name} (" in result.out


def test_events_can_be_filtered_by_kind_and_printed_in_full(
    capsys: pytest.CaptureFixture[str], iris_session: Path
) -> None:
    argv = ["events", str(iris_session), "--step", "3", "--kind", "loss_computed"]
    result = run(capsys, argv)
    assert result.code == 0
    headers = _headers(result.out)
    assert len(headers) == 1 and "loss_computed" in headers[0]
    assert "..." in result.out  # 32 rows are summarized
    full = run(capsys, [*argv, "--full"])
    assert full.code == 0
    assert "..." not in full.out
    assert len(full.out) > len(result.out)


def test_events_of_the_last_seq_is_the_session_end(
    capsys: pytest.CaptureFixture[str], iris_session: Path
) -> None:
    with Session(iris_session) as session:
        last = session.n_events - 1
    result = run(capsys, ["events", str(iris_session), "--seq", str(last)])
    assert result.code == 0
    assert "session_ended" in _headers(result.out)[0]
    assert "reason = completed" in result.out


def test_verify_passes_an_untouched_file(
    capsys: pytest.CaptureFixture[str], iris_session: Path
) -> None:
    result = run(capsys, ["verify", str(iris_session), "--quiet"])
    assert result.code == 0, result.out
    assert "OK: every recorded value reproduces bit for bit." in result.out
    assert "re-executed 12 steps" in result.out


def test_verify_fails_a_tampered_file_and_names_the_step(
    capsys: pytest.CaptureFixture[str], iris_session: Path, tmp_path: Path
) -> None:
    path = tmp_path / "tampered.session"
    shutil.copy(iris_session, path)
    con = sqlite3.connect(path)
    (summary,) = con.execute("SELECT summary FROM steps WHERE step = 7").fetchone()
    values = np.frombuffer(summary, "<f8").copy()
    values[0] = np.nextafter(values[0], np.inf)
    with con:
        con.execute("UPDATE steps SET summary = ? WHERE step = 7", (values.tobytes(),))
    con.close()

    result = run(capsys, ["verify", str(path), "--quiet"])
    assert result.code == 1
    assert "DIFFERENT: step 7:" in result.out
    assert "Traceback" not in result.err
    # Reading the changed step says it does not reproduce, in one line.
    events = run(capsys, ["events", str(path), "--step", "7"])
    assert_one_line_error(events, 1, "Step 7 of", "does not reproduce")


def test_datasets_lists_every_built_in_dataset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run(capsys, ["datasets"])
    assert result.code == 0
    lines = result.out.splitlines()
    assert [line.split()[0] for line in lines] == list(DATASETS)
    iris = next(line for line in lines if line.startswith("iris "))
    assert "multiclass" in iris and "real" in iris
    moons = next(line for line in lines if line.startswith("moons "))
    assert "binary" in moons and "generated" in moons


def test_demo_records_the_demo_session(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "demo.session"
    result = run(capsys, ["demo", "--out", str(out)])
    assert result.code == 0, result.err
    assert f"Saved {out}." in result.out
    assert "Demo: Iris flowers, 4-16-3, Adam" in result.out
    with Session(out) as session:
        assert session.status == "completed"
        assert session.config.optimizer == "adam"
        assert session.config.epochs == 30
        assert session.spec.sizes == (4, 16, 3)
        first = session.series().loss.copy()
    # Running the demo again replaces the file with the same run.
    assert run(capsys, ["demo", "--out", str(out)]).code == 0
    with Session(out) as session:
        assert np.array_equal(session.series().loss, first)


def test_the_readme_example(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    session = "runs/iris.session"
    argv = "record --dataset iris --epochs 30 --seed 0 --out runs/iris.session"
    result = run(capsys, argv.split())
    assert result.code == 0, result.err
    assert (tmp_path / "runs" / "iris.session").is_file()
    for command in (
        ["info", session],
        ["events", session, "--step", "5"],
        ["events", session, "--seq", "42"],
        ["verify", session],
        ["datasets"],
    ):
        done = run(capsys, command)
        assert done.code == 0, (command, done.err)
        assert "Traceback" not in done.err
    assert "recorded   120 of 120 steps" in run(capsys, ["info", session]).out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, [])
    assert result.code == 2
    assert "record" in result.out and "verify" in result.out


# -- errors ---------------------------------------------------------------------


QUIET = {"info": [], "events": [], "verify": ["--quiet"]}


@pytest.mark.parametrize("command", ["info", "events", "verify"])
def test_a_missing_file_is_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "nope.session"
    result = run(capsys, [command, str(missing), *QUIET[command]])
    assert_one_line_error(result, 1, str(missing), "does not exist")


@pytest.mark.parametrize("command", ["info", "events", "verify"])
def test_a_file_that_is_not_a_session_is_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    text = tmp_path / "notes.session"
    text.write_text("these are my notes\n")
    result = run(capsys, [command, str(text), *QUIET[command]])
    assert_one_line_error(result, 1, "not an SQLite file")
    cut = tmp_path / "cut.session"
    cut.write_bytes(b"SQLite format 3\x00" + bytes(200))
    result = run(capsys, [command, str(cut), *QUIET[command]])
    assert_one_line_error(result, 1, "damaged")


def test_verify_with_its_progress_bar_fails_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # As a user runs it: the progress bar must not be left around the message.
    missing = tmp_path / "nope.session"
    assert_one_line_error(run(capsys, ["verify", str(missing)]), 1, "does not exist")


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--epochs", "0"], ["Epochs must be a whole number >= 1; got 0"]),
        (["--epochs", "-3"], ["Epochs must be a whole number >= 1; got -3"]),
        (["--hidden", "5,0,7"], ["Hidden layer 2 has 0 units", "--hidden none"]),
        (["--hidden", "5,-1"], ["Hidden layer 2 has -1 units", "--hidden none"]),
        (["--hidden", "0"], ["Hidden layer 1 has 0 units", "--hidden none"]),
        (["--hidden", ""], ["--hidden takes sizes", "''", "--hidden none"]),
        (["--hidden", "5,,7"], ["--hidden takes sizes separated by commas", "'5,,7'"]),
        (["--hidden", "big"], ["--hidden takes sizes", "'big'"]),
        (["--lr", "-1"], ["lr (learning rate)", "got -1.0"]),
        (["--lr", "nan"], ["lr (learning rate)", "got nan"]),
        (["--lr", "inf"], ["lr (learning rate)", "finite and > 0.0", "got inf"]),
        (["--eps", "inf"], ["eps must be", "finite and > 0.0", "got inf"]),
        (["--l2", "inf"], ["l2 must be", "finite and >= 0.0", "got inf"]),
        (["--target", "y"], ["--target is for --csv", "built-in datasets"]),
        (["--task", "regression"], ["--task is for --csv", "built-in datasets"]),
        (["--missing", "drop"], ["--missing is for --csv"]),
        (["--no-header"], ["--no-header is for --csv"]),
        (
            ["--batch-size", "0"],
            ["batch_size must be a whole number >= 1", "--batch-size full"],
        ),
        (["--batch-size", "many"], ["--batch-size takes a whole number or 'full'"]),
        (["--batch-size", "1000"], ["batch_size 1000 is larger than the 120"]),
        (["--dropout", "1"], ["dropout 1.0", "[0, 1)"]),
        (["--momentum", "1.5"], ["momentum must be a number in [0.0, 1.0)"]),
        (["--test-fraction", "2"], ["test fraction", "got 2.0"]),
        (["--seed", "-1"], ["seed must be a whole number >= 0; got -1"]),
        (["--optimizer", "gd", "--batch-size", "16"], ["gd optimizer is full-batch"]),
        (
            ["--loss", "bce", "--output-activation", "linear"],
            ["binary_cross_entropy needs outputs between 0 and 1"],
        ),
        (["--n-samples", "50"], ["only apply to generated datasets"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_flag_values_are_one_line_errors(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    flags: list[str],
    words: list[str],
) -> None:
    out = tmp_path / "never.session"
    argv = ["record", "--dataset", "iris", *flags, "--out", str(out), "--quiet"]
    assert_one_line_error(run(capsys, argv), 1, *words)
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["record", "--dataset", "nope"], ["--dataset", "invalid choice: 'nope'"]),
        (["record", "--epochs", "three"], ["--epochs", "invalid int value: 'three'"]),
        (["record", "--optimizer", "lbfgs"], ["--optimizer", "invalid choice"]),
        (["record", "--dataset", "iris", "--csv", "x.csv"], ["not allowed with"]),
        (["events", "f.session", "--step", "1", "--seq", "2"], ["not allowed with"]),
        (["events", "f.session", "--step", "one"], ["--step", "invalid int value"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_flags_argparse_rejects_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: list[str]
) -> None:
    assert_usage_error(run(capsys, argv), *words)


def test_an_unknown_csv_target_and_a_missing_csv_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "never.session"
    missing = tmp_path / "missing.csv"
    result = run(capsys, ["record", "--csv", str(missing), "--out", str(out)])
    assert_one_line_error(result, 1, str(missing))
    csv = CASES / "case15.csv"
    argv = ["record", "--csv", str(csv), "--target", "price", "--out", str(out)]
    result = run(capsys, [*argv, "--quiet"])
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.strip().splitlines()[-1].startswith("glassnet: ")
    assert "price" in result.err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--step", "12"], ["Step 12 is not in the session", "steps 0 to 11"]),
        (["--step", "-1"], ["Step -1 is not in the session"]),
        (["--seq", "100000"], ["Event 100000 is not in the session"]),
        (["--seq", "-1"], ["Event -1 is not in the session"]),
    ],
)
def test_events_outside_the_session_are_one_line_errors(
    capsys: pytest.CaptureFixture[str],
    iris_session: Path,
    argv: list[str],
    words: list[str],
) -> None:
    result = run(capsys, ["events", str(iris_session), *argv])
    assert_one_line_error(result, 1, *words)


def test_recording_over_an_existing_file_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], iris_session: Path, tmp_path: Path
) -> None:
    path = tmp_path / "kept.session"
    shutil.copy(iris_session, path)
    before = path.read_bytes()
    argv = ["record", "--dataset", "iris", "--epochs", "1", "--out", str(path)]
    result = run(capsys, argv)  # with the progress bar on, as a user runs it
    assert_one_line_error(result, 1, "already exists")
    assert path.read_bytes() == before
    assert run(capsys, [*argv, "--overwrite", "--quiet"]).code == 0


def test_a_bad_keyframe_interval_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "never.session"
    argv = ["record", "--dataset", "iris", "--keyframe-interval", "0"]
    result = run(capsys, [*argv, "--out", str(out), "--quiet"])
    assert_one_line_error(result, 1, "keyframe")


def test_an_output_path_that_cannot_be_created_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = ["record", "--dataset", "iris", "--epochs", "1", "--quiet"]
    result = run(capsys, [*argv, "--out", str(blocker / "x.session")])
    assert_one_line_error(result, 1, str(blocker))

    folder = tmp_path / "a-folder.session"
    folder.mkdir()
    result = run(capsys, [*argv, "--out", str(folder), "--overwrite"])
    assert_one_line_error(result, 1, str(folder))
    assert folder.is_dir()


# -- messages a command-line user can follow ---------------------------------


def test_record_help_says_how_to_ask_for_no_hidden_layer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run(capsys, ["record", "--help"])
    assert result.code == 0
    help_text = " ".join(result.out.split())
    assert "--hidden none" in help_text or "'none' for no hidden layer" in help_text
    assert "no hidden layer" in help_text


def test_readme_says_how_to_ask_for_no_hidden_layer() -> None:
    readme = Path(__file__).parents[2] / "README.md"
    text = " ".join(readme.read_text().split("## Recording and inspecting")[1].split())
    assert "--hidden none" in text


def test_hidden_none_records_a_network_without_hidden_layer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "flat.session"
    argv = ["record", "--dataset", "xor", "--hidden", "none", "--epochs", "1"]
    assert run(capsys, [*argv, "--out", str(out), "--quiet"]).code == 0
    with Session(out) as session:
        assert session.spec.sizes == (2, 1)


def test_a_missing_output_folder_is_created_and_said(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "new" / "deeper" / "x.session"
    argv = ["record", "--dataset", "xor", "--epochs", "1", "--quiet"]
    result = run(capsys, [*argv, "--out", str(out)])
    assert result.code == 0, result.err
    assert out.exists()
    new = tmp_path / "new"
    assert f"(created the folders {new} down to {new / 'deeper'} for it)" in result.out
    one = tmp_path / "one" / "x.session"
    result = run(capsys, [*argv, "--out", str(one)])
    assert f"(created the folder {one.parent} for it)" in result.out
    # An existing folder is not announced.
    again = run(capsys, [*argv, "--out", str(out.with_name("y.session"))])
    assert "created the folder" not in again.out


def test_recording_over_an_existing_file_names_the_flag(
    capsys: pytest.CaptureFixture[str], iris_session: Path, tmp_path: Path
) -> None:
    path = tmp_path / "kept.session"
    shutil.copy(iris_session, path)
    argv = ["record", "--dataset", "iris", "--epochs", "1", "--out", str(path)]
    line = assert_one_line_error(run(capsys, [*argv, "--quiet"]), 1, "already exists")
    assert "--overwrite" in line
    assert "pass overwrite" not in line


def test_csv_messages_name_the_flag_and_the_app_control(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv = tmp_path / "gaps.csv"
    csv.write_text("a,b,y\n1,,0\n2,3,1\n4,5,0\n6,7,1\n")
    argv = ["record", "--csv", str(csv), "--epochs", "1", "--quiet"]
    line = assert_one_line_error(
        run(capsys, [*argv, "--out", str(tmp_path / "g.session")]),
        1,
        "--missing drop",
        "Missing values",
    )
    assert "missing='drop'" not in line.split("(")[0]


def test_csv_header_flags_reach_the_import(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv = tmp_path / "plain.csv"
    csv.write_text("".join(f"{i},{i + 20},{i % 2}\n" for i in range(2, 14)))
    out = tmp_path / "h.session"
    argv = ["record", "--csv", str(csv), "--epochs", "1", "--quiet", "--out"]
    assert run(capsys, [*argv, str(out), "--header"]).code == 0
    with Session(out) as session:
        assert (
            session.meta["dataset"]["n_train"] + session.meta["dataset"]["n_test"] == 11
        )
    out2 = tmp_path / "n.session"
    assert run(capsys, [*argv, str(out2), "--no-header", "--delimiter", ","]).code == 0
    with Session(out2) as session:
        assert (
            session.meta["dataset"]["n_train"] + session.meta["dataset"]["n_test"] == 12
        )


def test_info_counts_one_feature_and_one_epoch_in_the_singular(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "sine.session"
    argv = ["record", "--dataset", "sine", "--n-samples", "20", "--epochs", "1"]
    argv += ["--optimizer", "gd", "--out", str(out), "--quiet"]
    assert run(capsys, argv).code == 0
    result = run(capsys, ["info", str(out)])
    assert "1 feature\n" in result.out, result.out
    assert "1 features" not in result.out
    assert ", 1 epoch," in result.out
    assert "1 epochs" not in result.out
    assert "of 1 step," in result.out
