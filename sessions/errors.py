"""Define the errors the sessions layer raises, rooted in glassnet's base error."""

from __future__ import annotations

from engine.errors import GlassnetError

__all__ = [
    "DatasetError",
    "RecordingError",
    "SessionError",
    "SessionFormatError",
    "SessionReproducibilityError",
]


class SessionError(GlassnetError):
    """Base class of every error about recording, storing or reading a session."""


class RecordingError(SessionError, ValueError):
    """Raised for impossible recording settings or a path that cannot be written."""


class SessionFormatError(SessionError, ValueError):
    """Raised for a session file that is not one, is damaged, or is too new/hostile."""


class SessionReproducibilityError(SessionError):
    """Raised when re-executing a recorded step does not give the recorded values."""


class DatasetError(GlassnetError, ValueError):
    """Raised for data that cannot be trained on; the message says how to fix it."""
