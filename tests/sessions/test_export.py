"""Exports of a recorded session: metrics CSV, arrays as .npy, a Jupyter notebook."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import Session, record
from sessions.datasets import load_dataset
from sessions.export import (
    ExportError,
    array_field,
    array_file_name,
    event_array,
    find_event,
    metrics_csv,
    metrics_frame,
    notebook,
    write_array,
    write_metrics_csv,
    write_notebook,
)

ROOT = Path(__file__).resolve().parents[2]
TITLE = 'Moons <b>*bold*</b> & "quotes"\nsecond line'


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Record a small Adam run with dropout: 3 epochs of 4 steps, 2 hidden layers."""
    data = load_dataset("moons", n_samples=100, seed=1)
    spec = NetworkSpec(
        data.n_features,
        (
            LayerSpec(5, "tanh", dropout=0.2),
            LayerSpec(4, "relu"),
            LayerSpec(1, "sigmoid"),
        ),
    )
    config = TrainingConfig(
        loss="binary_cross_entropy",
        optimizer="adam",
        lr=0.05,
        epochs=3,
        batch_size=20,
        seed=4,
    )
    path = tmp_path_factory.mktemp("export") / "moons run.session"
    record(spec, config, data, path, title=TITLE)
    return path


@pytest.fixture
def session(recorded: Path) -> Session:
    with Session(recorded) as s:
        yield s


# -- metrics CSV -------------------------------------------------------------------


def test_metrics_csv_reads_back_equal_to_the_series(
    session: Session, tmp_path: Path
) -> None:
    path = write_metrics_csv(session, tmp_path)
    assert path.name == "moons_run_metrics_steps0-11.csv"
    table = pd.read_csv(path, comment="#")
    series, epochs = session.series(), session.epochs()

    assert list(table["step"]) == list(series.step)
    assert list(table["epoch"]) == list(series.epoch + 1)
    assert np.array_equal(table["loss"].to_numpy(), series.loss)
    assert np.array_equal(table["data_loss"].to_numpy(), series.data_loss)
    for layer in range(3):
        got = table[f"grad_norm_layer{layer + 1}"].to_numpy()
        assert np.array_equal(got, series.grad_norms[:, layer])
        got = table[f"update_ratio_layer{layer + 1}"].to_numpy()
        assert np.array_equal(got, series.update_ratios[:, layer])

    # Per-epoch metrics sit on the step that ended each epoch, NaN elsewhere.
    assert list(epochs.step) == [3, 7, 11]
    for split, values in (("train", epochs.train), ("test", epochs.test)):
        assert set(values) == {"loss", "accuracy"}
        for metric, column in values.items():
            got = table[f"{split}_{metric}"].to_numpy()
            assert np.array_equal(got[epochs.step], column)
            others = np.delete(got, epochs.step)
            assert others.size == 9 and np.isnan(others).all()


def test_metrics_csv_names_the_session_and_steps_in_a_comment_line(
    session: Session,
) -> None:
    text = metrics_csv(session)
    first, second = text.splitlines()[:2]
    assert first.startswith("# glassnet per-step metrics of session ")
    # The title's line break does not break the comment line.
    assert "second line" in first and "moons run.session" in first
    assert "steps 0 to 11" in first and "(train metrics: batches)" in first
    assert second.startswith("step,epoch,loss,data_loss,grad_norm_layer1,")


def test_metrics_of_a_regression_run_have_loss_columns_only(tmp_path: Path) -> None:
    data = load_dataset("sine", n_samples=40, seed=0)
    spec = NetworkSpec(1, (LayerSpec(4, "tanh"), LayerSpec(1, "identity")))
    config = TrainingConfig(loss="mse", optimizer="sgd", lr=0.1, epochs=2, seed=0)
    path = tmp_path / "sine.session"
    record(spec, config, data, path)
    with Session(path) as s:
        table = pd.read_csv(write_metrics_csv(s, tmp_path / "m.csv"), comment="#")
        assert [c for c in table.columns if c.startswith(("train_", "test_"))] == [
            "train_loss",
            "test_loss",
        ]
        assert len(table) == len(metrics_frame(s)) == s.n_steps
        ends = s.epochs().step
        assert np.array_equal(
            table["test_loss"].to_numpy()[ends], s.epochs().test["loss"]
        )


# -- arrays --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "kind", "layer", "name", "field", "engine_layer"),
    [
        (6, "parameters_updated", 2, "W", "after", 1),
        (6, "parameters_updated", 1, "b", "state.m", 0),
        (0, "weighted_sum_computed", 1, None, "z", 0),
        (11, "activation_computed", 3, None, "a", 2),
        (5, "gradient_computed", 2, "dW", None, 1),
        (5, "dropout_applied", 1, None, "mask", 0),
        (9, "batch_sampled", None, None, "indices", None),
        (2, "loss_computed", None, None, "per_sample", None),
    ],
)
def test_npy_loads_equal_to_the_recorded_value(
    session: Session,
    tmp_path: Path,
    step: int,
    kind: str,
    layer: int | None,
    name: str | None,
    field: str | None,
    engine_layer: int | None,
) -> None:
    event = find_event(session, step, kind, layer, name)
    path = write_array(session, tmp_path, event, field)
    loaded = np.load(path, allow_pickle=False)

    # The same value, read independently from the step's events.
    (recorded,) = [
        e
        for e in session.step_events(step)
        if e.kind == kind
        and e.layer == engine_layer
        and (name is None or e.name == name)
    ]
    field = field or "value"
    head, _, key = field.partition(".")
    expected = getattr(recorded, head)
    expected = expected[key] if key else expected
    assert loaded.dtype == expected.dtype
    assert np.array_equal(loaded, expected)
    assert path.name == array_file_name(session, event, field)
    assert path.name.startswith(f"moons_run_step{step}_{kind}")


def test_array_file_name_names_step_kind_layer_from_1_name_and_field(
    session: Session,
) -> None:
    event = find_event(session, 6, "parameters_updated", 2, "W")
    assert event.layer == 1
    name = array_file_name(session, event, "after")
    assert name == "moons_run_step6_parameters_updated_layer2_W_after.npy"
    sums = find_event(session, 6, "weighted_sum_computed", 3)
    assert array_file_name(session, sums, "z") == (
        "moons_run_step6_weighted_sum_computed_layer3_z.npy"
    )


def test_numbers_and_tuples_of_numbers_are_arrays_too(session: Session) -> None:
    done = find_event(session, 3, "step_completed")
    norms = event_array(done, "grad_norms")
    assert norms.shape == (3,)
    assert np.array_equal(norms, session.series().grad_norms[3])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((12, "weighted_sum_computed", 1), "Step 12 is not in .*steps 0 to 11"),
        ((-1, "weighted_sum_computed", 1), "Step -1 is not in"),
        ((3, "weights_changed", 1), "no event kind 'weights_changed'; kinds are"),
        (
            (3, "weighted_sum_computed", 4),
            "no weighted_sum_computed event with layer 4",
        ),
        ((3, "gradient_computed", 2), "4 gradient_computed events; choose one"),
        ((3, "gradient_computed", 2, "dW2"), "with layer 2, name dW2; it has: .*dW"),
        ((1, "epoch_completed"), "Step 1 has no epoch_completed event; it has: "),
        ((1, "weighted_sum_computed", 0), "counted from 1 .* has layers 1 to 3"),
    ],
)
def test_find_event_names_what_the_step_has(
    session: Session, args: tuple, words: str
) -> None:
    with pytest.raises(ExportError, match=words):
        find_event(session, *args)


def test_array_field_lists_the_fields_of_the_event(session: Session) -> None:
    update = find_event(session, 3, "parameters_updated", 1, "W")
    with pytest.raises(ExportError, match="has no field 'W_after'; its array fields"):
        array_field(update, "W_after")
    with pytest.raises(ExportError, match="holds no numbers in 'optimizer'"):
        array_field(update, "optimizer")
    with pytest.raises(ExportError, match="has several arrays; .*before, grad, after"):
        array_field(update, None)
    with pytest.raises(ExportError, match="has no field 'state.nope'"):
        array_field(update, "state.nope")
    assert array_field(find_event(session, 3, "gradient_computed", 1, "dz")) == "value"


def test_export_refuses_a_missing_folder(session: Session, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="the folder .*nowhere does not exist"):
        write_metrics_csv(session, tmp_path / "nowhere" / "m.csv")


# -- notebook ------------------------------------------------------------------


def test_notebook_is_nbformat_4_json_naming_session_and_step(
    session: Session, tmp_path: Path
) -> None:
    path = write_notebook(session, tmp_path, 7)
    assert path.name == "moons_run_step7.ipynb"
    book = json.loads(path.read_text(encoding="utf-8"))

    assert book["nbformat"] == 4 and book["nbformat_minor"] >= 5
    assert book["metadata"]["kernelspec"]["language"] == "python"
    assert book["metadata"]["glassnet"] == {"session": "moons run.session", "step": 7}
    ids = [cell["id"] for cell in book["cells"]]
    assert len(set(ids)) == len(ids)
    for cell in book["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        assert isinstance(cell["source"], str) and isinstance(cell["metadata"], dict)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            compile(cell["source"], "cell", "exec")
        else:
            assert set(cell) == {"cell_type", "metadata", "source", "id"}
    first = book["cells"][0]
    assert first["cell_type"] == "markdown"
    assert "moons run.session" in first["source"]
    assert "exported at step 7" in first["source"]


def test_notebook_shows_the_title_as_text_not_markup(session: Session) -> None:
    intro = notebook(session, 0)["cells"][0]["source"]
    heading = intro.splitlines()[0]
    assert "<b>" not in intro and "&lt;b&gt;" in heading
    # Markdown punctuation is escaped; the title's line break is a space.
    assert r"\*bold\*" in heading and "second line" in heading


def test_notebook_refuses_a_step_outside_the_run(session: Session) -> None:
    with pytest.raises(ExportError, match="Step 12 is not in .*steps 0 to 11"):
        notebook(session, 12)


def test_notebook_code_runs_and_draws_the_recorded_series(
    recorded: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "nb"
    folder.mkdir()
    shutil.copy(recorded, folder / recorded.name)
    with Session(folder / recorded.name) as s:
        path = write_notebook(s, folder, 5)
        loss, steps = s.series().loss.tolist(), s.epochs().step.tolist()
    book = json.loads(path.read_text(encoding="utf-8"))
    code = [c["source"] for c in book["cells"] if c["cell_type"] == "code"]
    assert 'SESSION_FILE = Path("moons run.session")' in code[0]

    # Check what the cells drew, after running them all as one script.
    check = """
import json
line = loss_fig.renderers[0].data_source.data
grads = [r.data_source.data["y"] for r in grad_fig.renderers]
print("RESULT", json.dumps({
    "loss": list(map(float, line["y"])),
    "epoch_x": [int(x) for x in epoch_figs[0].renderers[0].data_source.data["x"]],
    "n_grad_lines": len(grads),
    "tab_step": state.step,
    "train_accuracy": results.accuracy("train"),
}))
"""
    script = "\n\n".join([*code, check])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result["loss"] == loss
    assert result["epoch_x"] == [s + 1 for s in steps]
    assert result["n_grad_lines"] == 3
    assert result["tab_step"] == 5
    assert 0.0 <= result["train_accuracy"] <= 1.0
