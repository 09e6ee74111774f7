"""Define the errors and warnings glassnet raises, all rooted in one base class."""

from __future__ import annotations

__all__ = ["ConfigError", "GlassnetError", "TrainingWarning"]


class GlassnetError(Exception):
    """Base class of every error glassnet raises on purpose."""


class ConfigError(GlassnetError, ValueError):
    """Raised for an impossible network or training setting; says how to fix it."""


class TrainingWarning(UserWarning):
    """Warned for a run that finished but looks wrong (divergence, dead units)."""
