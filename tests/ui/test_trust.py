"""The trust badge without a browser: chain state, Verify in the background."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import sessions.recorder
import ui.trust
from engine import LayerSpec, NetworkSpec, Trainer, TrainingConfig
from sessions import Recorder, VerifyReport
from sessions.datasets import load_dataset
from ui.state import AppState
from ui.trust import TrustBadge, verify_text

FORMAT_1 = Path(__file__).parents[1] / "data" / "format1"


def badge_on(path: Path) -> TrustBadge:
    """Return a badge on ``path`` once its hash chain has been checked."""
    state = AppState(sessions_dir=str(path.parent))
    badge = TrustBadge(state=state)
    assert state.open(path), state.message
    badge.wait(60)
    return badge


def edit_summary(src: Path, dst: Path, step: int) -> Path:
    """Copy ``src`` to ``dst`` with the loss of ``step`` one ulp larger."""
    shutil.copy(src, dst)
    con = sqlite3.connect(dst)
    (blob,) = con.execute(
        "SELECT summary FROM steps WHERE step = ?", (step,)
    ).fetchone()
    values = np.frombuffer(blob, "<f8").copy()
    values[0] = np.nextafter(values[0], np.inf)
    with con:
        con.execute(
            "UPDATE steps SET summary = ? WHERE step = ?", (values.tobytes(), step)
        )
    con.close()
    return dst


def test_the_badge_says_at_once_that_a_recorded_chain_is_intact(
    demo_dir: Path,
) -> None:
    badge = badge_on(demo_dir / "demo.session")
    assert badge.chain.startswith("✓ Unedited since recording: hash chain intact, ")
    assert "glassnet-trust-intact" in badge.chain_pane.object
    assert badge.result == "" and not badge.result_pane.visible
    assert not badge.verify_button.disabled


def test_verify_runs_in_the_background_and_says_it_reproduces(
    demo_dir: Path,
) -> None:
    badge = badge_on(demo_dir / "demo.session")
    badge.verify()
    assert badge.verify_button.disabled and badge.bar.visible
    badge.wait(120)
    assert badge.result.startswith("✓ Reproduces bit for bit on this machine (")
    assert badge.result_pane.visible and not badge.bar.visible
    assert not badge.verify_button.disabled


def test_an_edited_file_is_flagged_and_verify_says_where_it_differs(
    demo_dir: Path, tmp_path: Path
) -> None:
    path = edit_summary(demo_dir / "demo.session", tmp_path / "edited.session", 9)
    badge = badge_on(path)
    assert badge.chain.startswith("⚠ This file was edited after recording: link ")
    # The link holding step 9 (the recorder committed every 0.05 s).
    steps = re.search(r"steps (\d+)\.\.(\d+)", badge.chain)
    assert steps is not None, badge.chain
    first, last = map(int, steps.groups())
    assert first <= 9 <= last
    assert "glassnet-trust-edited" in badge.chain_pane.object
    badge.verify()
    badge.wait(120)
    assert badge.result.startswith("✗ Differs: step 9: ")
    # Recorded here: nothing but an edit explains the difference.
    assert "recorded with the same software as this machine has" in badge.result
    assert str(tmp_path) not in badge.result


@pytest.mark.parametrize("name", ["moons-momentum.session", "iris-adam.session"])
def test_a_format_1_file_has_no_chain_and_still_verifies(
    name: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    shutil.copy(FORMAT_1 / name, path)
    badge = badge_on(path)
    assert badge.chain == "no hash chain (format 1): edits cannot be detected"
    badge.verify()
    badge.wait(120)
    assert badge.result.startswith("✓ Reproduces bit for bit")


def test_a_difference_names_the_software_versions_that_differ() -> None:
    report = VerifyReport(
        Path("/srv/runs/a.session"),
        first_difference="step 3: loss re-executed as 0.5, recorded as 0.25",
        versions={
            "glassnet": ("0.1.0", "0.1.0"),
            "NumPy": ("1.26.4", "2.4.6"),
            "platform": ("Linux aarch64", "Linux x86_64"),
        },
    )
    assert verify_text(report) == (
        "✗ Differs: step 3: loss re-executed as 0.5, recorded as 0.25 (NumPy: "
        "recorded with 1.26.4, this machine has 2.4.6; platform: recorded with "
        "Linux aarch64, this machine has Linux x86_64)."
    )


def test_text_from_the_file_is_shown_as_text(demo_dir: Path) -> None:
    badge = badge_on(demo_dir / "demo.session")
    badge.result = verify_text(
        VerifyReport(Path("x.session"), first_difference="<img src=x onerror=alert(1)>")
    )
    badge._update()
    assert "<img" not in badge.result_pane.object
    assert "&lt;img src=x onerror=alert(1)&gt;" in badge.result_pane.object


def test_opening_another_session_resets_the_result(
    demo_dir: Path, tmp_path: Path
) -> None:
    badge = badge_on(demo_dir / "demo.session")
    badge.verify()
    badge.wait(120)
    assert badge.result
    other = tmp_path / "moons.session"
    shutil.copy(FORMAT_1 / "moons-momentum.session", other)
    assert badge.state.open(other)
    assert badge.result == ""
    badge.wait(60)
    assert badge.chain.startswith("no hash chain (format 1)")


def test_a_run_still_being_recorded_is_checked_again_as_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui.trust, "RECHECK_SECONDS", 0.0)
    # Commits only where the test flushes (a slow machine would add timed ones).
    monkeypatch.setattr(sessions.recorder, "COMMIT_INTERVAL", 1e9)
    data = load_dataset("moons", n_samples=60, seed=0)
    spec = NetworkSpec(2, (LayerSpec(3, "tanh"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(loss="bce", optimizer="sgd", epochs=4, batch_size=20)
    path = tmp_path / "live.session"
    trainer = Trainer(spec, config, data)
    recorder = Recorder(path, trainer, keyframe_interval=2)
    trainer.begin()
    for _ in range(4):
        recorder.before_step(trainer)
        trainer.train_step()
    recorder.flush()

    badge = badge_on(path)
    assert (
        badge.chain == "✓ Unedited so far: hash chain intact, 2 links (still recording)"
    )

    # Two more commits, then the app re-reads the file (its follow tick).
    for _ in range(2):
        recorder.before_step(trainer)
        trainer.train_step()
        recorder.flush()
    badge.state.refresh()
    badge.wait(60)  # shows the old check and starts a new one
    badge.wait(60)
    assert (
        badge.chain == "✓ Unedited so far: hash chain intact, 4 links (still recording)"
    )

    trainer.sink = recorder
    trainer.run(before_step=recorder.before_step)
    recorder.close()
    badge.state.refresh()
    badge.wait(60)
    badge.wait(60)
    assert badge.chain.startswith("✓ Unedited since recording: hash chain intact, ")
    assert badge._job is None  # nothing more to check
