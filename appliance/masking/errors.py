"""Errors of the masking engine: one root and a few specific ones; no HTTP statuses here."""

from __future__ import annotations

__all__ = ["MaskingError", "ProfileError", "TokenError", "UnknownEntityType", "UnknownProfile"]


class MaskingError(Exception):
    """Root of the errors the masking engine raises."""


class UnknownEntityType(MaskingError):
    """A profile, request or option names an entity type the engine does not know."""


class UnknownProfile(MaskingError):
    """No masking profile for the requested role/region."""


class ProfileError(MaskingError):
    """A masking profile file is invalid; the message names the file, the key and the fix."""


class TokenError(MaskingError):
    """A reversible token cannot be de-tokenised (wrong key, tampered or foreign token).

    One opaque message for every cause, as with any failure that involves a secret.
    """
