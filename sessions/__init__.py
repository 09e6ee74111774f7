"""The event log of glassnet: record runs into session files, read and replay them.

``sessions`` imports ``engine`` and never ``ui``; it owns files and time.
"""

from __future__ import annotations

from sessions.errors import (
    DatasetError,
    RecordingError,
    SessionError,
    SessionFormatError,
    SessionReproducibilityError,
)
from sessions.recorder import DEFAULT_KEYFRAME_INTERVAL, Recorder, record
from sessions.schema import FORMAT_VERSION
from sessions.session import EpochSeries, Series, Session, open_session
from sessions.verify import VerifyReport, verify

__all__ = [
    "DEFAULT_KEYFRAME_INTERVAL",
    "FORMAT_VERSION",
    "DatasetError",
    "EpochSeries",
    "Recorder",
    "RecordingError",
    "Series",
    "Session",
    "SessionError",
    "SessionFormatError",
    "SessionReproducibilityError",
    "VerifyReport",
    "open_session",
    "record",
    "verify",
]
