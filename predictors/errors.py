"""Errors of the proactive-service domain: one root and a few specific kinds.

No HTTP codes here; ``appliance/server/errors.py`` maps these types to problem+json.
Messages name the file, column or version that is wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "DeliveryError",
    "PlaybookError",
    "PredictorError",
    "RegistryError",
    "SchemaMismatch",
]


class PredictorError(Exception):
    """Root of every error raised by ``predictors``."""


class DataError(PredictorError):
    """Training or scoring input that cannot be used (missing column, non-numeric value, empty target)."""


class SchemaMismatch(DataError):
    """Data whose columns or types differ from the feature schema a model was trained on."""


class PlaybookError(PredictorError):
    """A playbook file that does not validate (unknown feature kind, bad window, bad cron)."""


class RegistryError(PredictorError):
    """An unknown, incomplete or tampered model version in the registry."""


class DeliveryError(PredictorError):
    """A webhook endpoint or secret that cannot be used as configured."""
