"""Re-execute a recorded run from its start and compare every stored value."""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import engine
from engine import events as ev
from engine.trainer import Trainer
from sessions.chain import ChainReport
from sessions.codec import decode_bundle, to_json
from sessions.errors import SessionFormatError
from sessions.initial import apply_initial_values
from sessions.session import Session
from sessions.state import encode_event, encode_state, encode_summary

__all__ = ["VerifyReport", "verify"]


@dataclass
class VerifyReport:
    """Say whether a session is unedited and reproduces bit for bit.

    ``chain`` says whether the file's hash chain matches its rows (edited
    after recording or not; format 1 files have none).  ``checked`` counts
    the stored values re-executed and compared: every step's summary and
    event positions, every keyframe, every epoch's metrics, and the end.
    ``first_difference`` is None when everything matched.  ``versions``
    maps each piece of software to (recorded with, this machine has).
    """

    path: Path
    steps: int = 0
    keyframes: int = 0
    epochs: int = 0
    checked: int = 0
    first_difference: str | None = None
    versions: dict[str, tuple[str, str]] = field(default_factory=dict)
    chain: ChainReport | None = None

    @property
    def ok(self) -> bool:
        """Return True when every stored value reproduced exactly."""
        return self.first_difference is None

    @property
    def edited(self) -> bool:
        """Return True when the hash chain shows the file changed after recording."""
        return self.chain is not None and self.chain.edited

    @property
    def passed(self) -> bool:
        """Return True when the file reproduces and was not edited."""
        return self.ok and not self.edited

    def changed_versions(self) -> list[str]:
        """Return a line per piece of software that differs from the recording."""
        return [
            f"{name}: recorded with {then}, this machine has {now}"
            for name, (then, now) in self.versions.items()
            if then != now
        ]

    def summary(self) -> str:
        """Return a few lines for a person to read: the chain, then the re-run."""
        lines = [] if self.chain is None else [f"{self.path}: {self.chain.text()}"]
        lines.append(
            f"{self.path}: re-executed {self.steps} steps and compared "
            f"{self.keyframes} keyframes, {self.epochs} epochs' metrics "
            f"({self.checked} stored records)."
        )
        if self.ok:
            lines.append("OK: every recorded value reproduces bit for bit.")
            return "\n".join(lines)
        lines.append(f"DIFFERENT: {self.first_difference}")
        changed = self.changed_versions()
        if changed:
            lines.extend(f"  {line}" for line in changed)
        else:
            lines.append(
                "  Recorded with the same glassnet, NumPy, Python and platform as "
                "this machine has: the file was changed after recording."
            )
        return "\n".join(lines)


def verify(
    path: str | Path, progress: Callable[[int, int], object] | None = None
) -> VerifyReport:
    """Check a session's hash chain, then re-run it and compare all it recorded.

    The run is rebuilt from the recorded network, settings, seed and data alone
    (not from its keyframes), so this checks the keyframes too.
    ``progress(done, total)`` is called every few hundred steps.
    """
    with Session(path, verify_steps=False) as session:
        chain = session.integrity()
        try:
            report = _verify(session, progress)
        except SessionFormatError as err:
            # Stored data that cannot be read back (a dataset that does not
            # match its hash, say) is a difference found while re-running.
            report = VerifyReport(session.path, first_difference=str(err))
            report.versions = _versions(session.meta)
        report.chain = chain
        return report


def _verify(
    session: Session, progress: Callable[[int, int], object] | None
) -> VerifyReport:
    meta = session.meta
    report = VerifyReport(session.path)
    report.versions = _versions(meta)
    con = session._con
    steps = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT step, epoch, seq_first, n_events, status, summary FROM steps"
        )
    }
    keyframes = dict(con.execute("SELECT step, state FROM keyframes"))
    epochs = {
        row[0]: row[1:]
        for row in con.execute("SELECT epoch, step, seq, train, test FROM epochs")
    }
    stored_events = dict(con.execute("SELECT seq, body FROM events"))
    state_names = session._state_names

    def differ(where: str) -> VerifyReport:
        report.first_difference = where
        return report

    log: list[ev.Event] = []
    if session.fork_of is None:
        trainer = Trainer(session.spec, session.config, session.dataset, log.append)
        # Hand-set initial values (meta ``initial_values``) go over the drawn ones.
        trainer.params = apply_initial_values(trainer.params, session.initial_values)
    else:
        # A fork's recorded start is its parent's state (keyframe 0).
        start = dataclasses.replace(session.state_before(0), seq=0)
        trainer = Trainer(
            session.spec, session.config, session.dataset, log.append, state=start
        )
    trainer.begin()
    total = session.last_step + 1
    for step in range(total):
        # The keyframe due before this step must equal the re-executed state.
        if step % session.keyframe_interval == 0:
            blob = keyframes.get(step)
            if blob is None:
                return differ(f"the keyframe of step {step} is missing from the file")
            again = encode_state(trainer.state(), state_names)
            if again != blob:
                return differ(_keyframe_difference(step, again, blob))
            report.keyframes += 1

        # Then the step itself: where its events sit, and its summary.
        row = steps.get(step)
        if row is None:
            return differ(f"step {step} is missing from the file")
        _, seq_first, n_events, status, summary = row
        trainer.train_step()
        span = (log[0].seq, len(log))
        if span != (seq_first, n_events):
            return differ(
                f"step {step} re-executed as events {span[0]}..{sum(span) - 1}, "
                f"recorded as {seq_first}..{seq_first + n_events - 1}"
            )
        diverged = log[-1].kind == "training_diverged"
        if diverged != (status == "diverged"):
            return differ(f"step {step} is stored as {status!r} but did not end so")
        got = _summary_of(log, session.n_layers)
        if got != summary:
            ours = np.frombuffer(got, "<f8").tolist()
            theirs = np.frombuffer(summary, "<f8").tolist()
            return differ(
                f"step {step}: [loss, data loss, gradient norms, update ratios] "
                f"re-executed as {ours}, recorded as {theirs}"
            )

        # Epoch metrics and a divergence are stored in full; compare them whole.
        for event in log:
            if isinstance(event, ev.EpochCompleted):
                stored = epochs.get(event.epoch)
                again_metrics = (to_json(event.train), to_json(event.test))
                if stored is None or tuple(stored[2:]) != again_metrics:
                    return differ(
                        f"epoch {event.epoch + 1} metrics re-executed as "
                        f"{again_metrics}, recorded as "
                        f"{tuple(stored[2:]) if stored else 'nothing'}"
                    )
                report.epochs += 1
            elif isinstance(event, ev.TrainingDiverged):
                if stored_events.get(event.seq) != encode_event(event):
                    return differ(f"the divergence at step {step} does not match")
        report.steps += 1
        log.clear()
        if progress is not None and step % 500 == 0:
            progress(step, total)
    if session.status == "completed" and not trainer.done:
        return differ("the file says the run completed, but steps are missing")
    report.checked = report.steps + report.keyframes + report.epochs
    if progress is not None:
        progress(total, total)
    return report


def _versions(meta: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Return each piece of software as (recorded with, this machine has)."""
    return {
        "glassnet": (str(meta.get("glassnet_version")), engine.__version__),
        "NumPy": (str(meta.get("numpy_version")), np.__version__),
        "Python": (str(meta.get("python_version")), platform.python_version()),
        "platform": (
            str(meta.get("platform")),
            f"{platform.system()} {platform.machine()}",
        ),
    }


def _summary_of(log: list[ev.Event], n_layers: int) -> bytes:
    """Return the summary the recorder stores for a step's events."""
    done = next((e for e in log if isinstance(e, ev.StepCompleted)), None)
    if done is None:
        nan = (float("nan"),) * n_layers
        return encode_summary(float("nan"), float("nan"), nan, nan)
    return encode_summary(
        done.loss, done.data_loss, done.grad_norms, done.update_ratios
    )


def _keyframe_difference(step: int, again: bytes, stored: bytes) -> str:
    ours, our_extra = decode_bundle(again, "re-executed state")
    theirs, their_extra = decode_bundle(stored, f"keyframe of step {step}")
    for name, arr in ours.items():
        other = theirs.get(name)
        if other is None or other.shape != arr.shape:
            return f"keyframe of step {step}: array {name} is missing or reshaped"
        if arr.tobytes() != other.tobytes():
            idx = np.argwhere(arr != other)
            at = tuple(int(i) for i in idx[0]) if idx.size else ()
            return (
                f"keyframe of step {step}: {name}{list(at)} re-executed as "
                f"{arr[at]!r}, recorded as {other[at]!r}"
            )
    if our_extra != their_extra:
        return f"keyframe of step {step}: step counter or dropout generator differ"
    return f"keyframe of step {step} differs"
