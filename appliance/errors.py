"""Errors of the node layer: one root, a few specific ones; no HTTP statuses here.

``appliance/server/errors.py`` maps these (and the domain packages' errors) to
problem+json in one table; the CLI maps them to exit code 2.
"""

from __future__ import annotations

__all__ = ["ApplianceError", "KeyFileError", "NodeError", "SettingsError"]


class ApplianceError(Exception):
    """Root of the errors the node layer raises."""


class SettingsError(ApplianceError):
    """Settings cannot be loaded; the message names the key and the fix."""


class NodeError(ApplianceError):
    """The node cannot be initialised or opened; the message says what to do."""


class KeyFileError(ApplianceError):
    """A secret file is missing, unreadable or too open; the message says how to fix it."""
