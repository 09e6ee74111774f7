"""Say whether the open session can be trusted: its hash chain, and a full re-run.

The badge shows at once whether the file's hash chain is intact (edited after
recording or not; format 1 files have none).  Its Verify button re-executes
the whole run in a background thread (``sessions.verify``) with a progress
bar, then says whether it reproduces bit for bit on this machine, or where it
first differs and which software versions differ from the recording.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import panel as pn
import param

from sessions import Session, SessionError, VerifyReport, verify
from sessions.chain import ChainReport
from ui.state import AppState

__all__ = ["POLL_MS", "RECHECK_SECONDS", "TrustBadge", "chain_text", "verify_text"]

logger = logging.getLogger(__name__)

POLL_MS = 250
"""How often the badge reads a running check's progress (milliseconds)."""

RECHECK_SECONDS = 2.0
"""How often the chain of a run still being recorded is checked again."""

_CSS = """
.glassnet-trust { padding: 2px 8px; border-radius: 4px; overflow-wrap: anywhere;
  white-space: pre-wrap; }
.glassnet-trust-intact { background: #e7f4e8; color: #1e4620; }
.glassnet-trust-edited { background: #fdecea; color: #611a15; }
.glassnet-trust-absent, .glassnet-trust-checking { background: #f1f3f5;
  color: #343a40; }
"""


def chain_text(report: ChainReport, recording: bool = False) -> str:
    """Return what the badge says of a hash chain, as plain text.

    ``recording``: the run is still being recorded (checked up to now).
    """
    if report.intact and recording:
        return f"✓ Unedited so far: {report.text()} (still recording)"
    if report.intact:
        return f"✓ Unedited since recording: {report.text()}"
    if report.edited:
        return f"⚠ This file was {report.text()}"
    return f"{report.text()}: edits cannot be detected"


def verify_text(report: VerifyReport) -> str:
    """Return what the badge says of a full re-run, as plain text.

    The file is named by its name only (the folder stays private).
    """
    if report.ok:
        return (
            f"✓ Reproduces bit for bit on this machine ({report.steps} steps, "
            f"{report.keyframes} keyframes, {report.epochs} epochs' metrics)."
        )
    where = str(report.first_difference).replace(str(report.path), report.path.name)
    changed = report.changed_versions()
    why = (
        "; ".join(changed)
        if changed
        else "recorded with the same software as this machine has, so the file "
        "was changed after recording"
    )
    return f"✗ Differs: {where} ({why})."


@dataclass
class _Job:
    """One background check: what the thread writes, what the poll reads."""

    path: Path
    kind: str  # "chain" or "verify"
    session: Session | None = None
    recording: bool = False
    done: int = 0
    total: int = 0
    finished: bool = False
    chain: ChainReport | None = None
    report: VerifyReport | None = None
    error: str = ""
    thread: threading.Thread | None = field(default=None, repr=False)


class TrustBadge(pn.viewable.Viewer):
    """The open session's hash chain state and a Verify button."""

    state = param.ClassSelector(class_=AppState, doc="The app state (open session).")
    chain = param.String(default="", doc="What the hash chain says, as plain text.")
    result = param.String(
        default="", doc="What the last full re-run said, as plain text (empty: none)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.chain_pane = pn.pane.HTML("", stylesheets=[_CSS], margin=(5, 5))
        self.verify_button = pn.widgets.Button(
            label="Verify",
            width=80,
            description="Re-run the whole session and compare every stored value",
        )
        self.bar = pn.indicators.Progress(
            value=0, max=1, width=160, visible=False, margin=(12, 5)
        )
        self.result_pane = pn.pane.HTML(
            "", stylesheets=[_CSS], margin=(5, 5), visible=False
        )
        self.verify_button.on_click(self._on_verify_button_click)
        self.state.param.watch(self._on_session, "session")
        self._job: _Job | None = None
        self._poll: Any = None
        self._next_check = 0.0
        self._shown_recording = False
        self._layout = pn.Row(
            self.chain_pane,
            self.verify_button,
            self.bar,
            self.result_pane,
            sizing_mode="stretch_width",
            css_classes=["glassnet-trust-row"],
        )
        self._on_session()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- running checks ------------------------------------------------------

    def verify(self) -> None:
        """Start re-running the open session in the background."""
        session = self.state.session
        job = self._job
        if session is None or (job is not None and job.kind == "verify"):
            return
        # A chain check under way is dropped: the re-run checks the chain too.
        self.result = ""
        recording = session.status == "incomplete"
        self._start(_Job(Path(session.path), "verify", recording=recording))

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running check to end, then show its result (for tests)."""
        job = self._job
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        self.poll()

    def poll(self) -> None:
        """Show a running check's progress, or its result once it has ended.

        While the open run is still being recorded, its chain is checked again
        every :data:`RECHECK_SECONDS`.  Runs on the server thread (periodic
        callback), so it may update panes.
        """
        job = self._job
        if job is not None and not job.finished:
            if job.kind == "verify":
                self.bar.max = max(job.total, 1)
                self.bar.value = min(job.done, self.bar.max)
            return
        if job is not None:
            self._job = None
            self._show(job)
        session = self.state.session
        # A run still recording, or one whose last check was made while it
        # recorded (once more, now that it has ended).
        live = session is not None and session.status == "incomplete"
        if live or (session is not None and self._shown_recording):
            if time.monotonic() >= self._next_check:
                self._check_chain()
            return
        self._stop_polling()

    def _show(self, job: _Job) -> None:
        """Show what a finished check found."""
        self.bar.visible = False
        self.verify_button.disabled = False
        if job.chain is not None:
            self.chain = chain_text(job.chain, job.recording)
            self._shown_recording = job.recording
        if job.kind == "chain":
            if job.error:
                self.chain = f"The hash chain could not be checked: {job.error}"
        elif job.report is not None:
            self.result = verify_text(job.report)
        else:
            self.result = f"✗ Verify could not finish: {job.error}"
        self._update()

    # -- handlers and refreshers ---------------------------------------------

    def _on_verify_button_click(self, _: Any) -> None:
        self.verify()

    def _on_session(self, *_: Any) -> None:
        # A check of the previous session is left to end unseen.
        self._job = None
        self._stop_polling()
        self._shown_recording = False
        self.bar.visible = False
        self.result = ""
        session = self.state.session
        self.verify_button.disabled = session is None
        if session is None:
            self.chain = ""
            self._update()
            return
        self.chain = "Checking the hash chain…"
        self._update()
        self._check_chain()

    def _check_chain(self) -> None:
        session = self.state.session
        assert session is not None
        self._next_check = time.monotonic() + RECHECK_SECONDS
        recording = session.status == "incomplete"
        self._start(_Job(Path(session.path), "chain", session, recording))

    def _start(self, job: _Job) -> None:
        self._job = job
        if job.kind == "verify":
            self.verify_button.disabled = True
            self.bar.value, self.bar.max = 0, 1
            self.bar.visible = True
            self.result = "Re-running every step…"
            self._update()
        job.thread = threading.Thread(
            target=_run, args=(job,), name=f"glassnet-{job.kind}", daemon=True
        )
        job.thread.start()
        if self._poll is None and pn.state.curdoc is not None:
            self._poll = pn.state.add_periodic_callback(self.poll, period=POLL_MS)

    def _stop_polling(self) -> None:
        if self._poll is not None:
            self._poll.stop()
            self._poll = None

    def _update(self) -> None:
        text = self.chain
        kind = "checking"
        if text.startswith("✓"):
            kind = "intact"
        elif text.startswith("⚠") or text.startswith("The hash chain could"):
            kind = "edited"
        elif text.startswith("no hash chain"):
            kind = "absent"
        self.chain_pane.object = _box(text, kind, "glassnet-trust-chain")
        self.chain_pane.visible = bool(text)
        result = self.result
        good = result.startswith("✓")
        bad = result.startswith("✗")
        kind = "intact" if good else "edited" if bad else "checking"
        self.result_pane.object = _box(result, kind, "glassnet-trust-result")
        self.result_pane.visible = bool(result)


def _box(text: str, kind: str, name: str) -> str:
    """Return ``text`` escaped in a styled box (file contents are never markup)."""
    return (
        f"<div class='glassnet-trust glassnet-trust-{kind} {name}' role='status'>"
        f"{html.escape(text)}</div>"
    )


def _run(job: _Job) -> None:
    """Run a check in the background; only plain attributes are written."""

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total

    try:
        if job.session is not None:
            # Read on its own connection: safe beside the app's own reads.
            job.chain = job.session.integrity()
        else:
            job.report = verify(job.path, progress=progress)
            job.chain = job.report.chain
    except SessionError as err:
        job.error = str(err).replace(str(job.path), job.path.name)
    except Exception as err:  # a thread must report, not die silently
        logger.exception("Checking %s failed", job.path)
        job.error = f"{type(err).__name__}: {err}".replace(str(job.path), job.path.name)
    finally:
        job.finished = True
