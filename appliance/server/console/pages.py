"""Which role may open which console page, from one table.

Every console view is declared with :func:`page`, which records it in :data:`PAGES` and checks the
signed-in role on each request, so the table the navigation and the role-matrix test read is the
one the server enforces. The roles mirror the JSON API's for the same data (the ledger for
auditors, policy versions for admins and auditors, triggers for ops and admins, ...).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from appliance.server.auth import check_roles
from appliance.server.console.blueprint import current_session
from appliance.server.console.errors import NotSignedIn, PageForbidden

__all__ = ["NAV", "PAGES", "Page", "nav_for", "page"]

F = TypeVar("F", bound=Callable[..., Any])

AUDITOR = ("auditor",)
COMPLIANCE = ("admin", "auditor")
ANALYST = ("analyst",)
CUSTODIAN = ("custodian",)
OPS = ("ops", "admin")
ADMIN = ("admin",)
JOB_READERS = ("admin", "auditor")


@dataclass(frozen=True)
class Page:
    endpoint: str  # "console.<view name>"
    roles: tuple[str, ...]
    nav: str | None  # catalogue key of its navigation link; None for sub-pages and actions


#: The navigation, in order; a role lands on the first page of it that it may open.
NAV = (
    "nav.audit",
    "nav.compliance",
    "nav.queries",
    "nav.approvals",
    "nav.ops",
    "nav.keys",
    "nav.jobs",
    "nav.health",
)

#: endpoint → page, filled by :func:`page` as the view modules are imported.
PAGES: dict[str, Page] = {}


def page(*roles: str, nav: str | None = None) -> Callable[[F], F]:
    """Declare a console view that only ``roles`` may use (403 page for the others)."""
    allowed = check_roles(roles)

    def decorate(fn: F) -> F:
        endpoint = f"console.{fn.__name__}"
        if endpoint in PAGES:
            raise ValueError(f"console page {endpoint} is declared twice")
        if nav is not None and nav not in NAV:
            raise ValueError(f"console page {endpoint}: {nav!r} is not in NAV")
        PAGES[endpoint] = Page(endpoint, allowed, nav)

        @functools.wraps(fn)
        def view(*args: Any, **kwargs: Any) -> Any:
            session = current_session()
            if session is None:
                raise NotSignedIn()
            if session.role not in allowed:
                raise PageForbidden(session.role, allowed)
            return fn(*args, **kwargs)

        return view  # type: ignore[return-value]

    return decorate


def nav_for(role: str) -> list[Page]:
    """The navigation links a role sees, in :data:`NAV` order."""
    pages = [p for p in PAGES.values() if p.nav is not None and role in p.roles]
    return sorted(pages, key=lambda p: NAV.index(p.nav or ""))
