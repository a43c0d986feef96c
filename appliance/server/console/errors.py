"""What the console refuses, as exceptions its error handler turns into HTML pages.

These belong to the web layer (they are about cookies, forms and pages), so unlike the domain
errors they are mapped in the console's own table (:data:`appliance.server.console.blueprint.PAGE_ERRORS`),
never in the problem+json table of the JSON API.
"""

from __future__ import annotations

__all__ = [
    "BadDownloadName",
    "BadFormValue",
    "ConsoleError",
    "CsrfRejected",
    "NotSignedIn",
    "PageForbidden",
    "SessionExpired",
]


class ConsoleError(Exception):
    """Root of the console's own refusals."""


class NotSignedIn(ConsoleError):
    """A page that needs a session was asked for without one."""


class SessionExpired(NotSignedIn):
    """The session timed out (``expired``), was signed out (``ended``) or its key revoked (``revoked``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CsrfRejected(ConsoleError):
    """A form post without the session's CSRF token (forged, stale or missing)."""


class PageForbidden(ConsoleError):
    """The signed-in role may not see this page."""

    def __init__(self, role: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"role {role!r} may not open this page; it needs one of: {', '.join(allowed)}")
        self.role = role
        self.allowed = allowed


class BadDownloadName(ConsoleError):
    """A download name that is not one the console hands out (path traversal, odd characters)."""


class BadFormValue(ConsoleError):
    """A form or query value that does not fit (names the field and what is expected)."""
