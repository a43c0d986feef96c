"""Errors of the node layer: one root, a few specific ones; no HTTP statuses here.

``appliance/server/errors.py`` maps these (and the domain packages' errors) to
problem+json in one table; the CLI maps them to exit code 2.
"""

from __future__ import annotations

__all__ = [
    "ApiKeyError",
    "ApiKeyStateError",
    "ApplianceError",
    "BackupError",
    "BackupExists",
    "BackupInvalid",
    "ErasurePending",
    "ErasureRefused",
    "KeyFileError",
    "LedgerQueryInvalid",
    "NodeError",
    "NothingSelected",
    "RestoreRefused",
    "SettingsError",
    "SubjectError",
    "UnknownApiKey",
    "UnknownWitness",
    "WitnessConfigError",
]


class ApplianceError(Exception):
    """Root of the errors the node layer raises."""


class SettingsError(ApplianceError):
    """Settings cannot be loaded; the message names the key and the fix."""


class NodeError(ApplianceError):
    """The node cannot be initialised or opened; the message says what to do."""


class KeyFileError(ApplianceError):
    """A secret file is missing, unreadable or too open; the message says how to fix it."""


class ApiKeyError(ApplianceError):
    """An API key operation was refused (the key is unknown, or its state does not allow it)."""


class UnknownApiKey(ApiKeyError):
    """No API key has that id; ``appliance keys list`` shows the ids."""


class ApiKeyStateError(ApiKeyError):
    """The key is revoked or expired (or is the last admin key), so it cannot be rotated or revoked."""


class BackupError(ApplianceError):
    """A backup could not be taken or restored; the message names the part and the fix."""


class BackupInvalid(BackupError):
    """A backup file is damaged, cut short or not a backup; the message names the member."""


class BackupExists(BackupError):
    """A backup of that name exists already; backups are never overwritten."""


class RestoreRefused(BackupError):
    """The restore target is not empty (or does not fit the backup); nothing was changed."""


class SubjectError(ApplianceError):
    """An operation on a data subject (erasure) was refused or did not finish."""


class ErasureRefused(SubjectError):
    """The erasure request itself is unusable (no reason, an unknown reason code); nothing was written."""


class ErasurePending(SubjectError):
    """The ``subject.erased`` entry is recorded but the store could not finish deleting; the node
    finishes it at its next start (or ``appliance subject recover``)."""


class LedgerQueryInvalid(ApplianceError):
    """A ledger search or evidence export cannot run as asked (a bad filter, too many entries)."""


class NothingSelected(LedgerQueryInvalid):
    """The filters of an evidence export select no entry; a bundle of nothing proves nothing."""


class WitnessConfigError(ApplianceError):
    """A witness cannot be added or used as configured (bad URL or key, duplicate name)."""


class UnknownWitness(WitnessConfigError):
    """No configured witness has that name; ``appliance witness list`` shows them."""
