"""The web console at ``/console``: server-rendered pages per role over the node's services.

People sign in with a role's API key and get a server-side session (see :mod:`.session`); every
page calls the same node services as the JSON API, so every action appends the same ledger entries
with the key's actor. Pages are Jinja templates in English and Chinese (:mod:`.i18n`) with a little
JavaScript of our own (``static/js``) and a vendored chart library (``static/vendor``), served
under a CSP that allows nothing from elsewhere. Which role sees which page is one table,
:data:`PAGES`.
"""

from __future__ import annotations

from appliance.server.console import (  # noqa: F401 - importing them registers their views
    views_account,
    views_admin,
    views_analyst,
    views_audit,
    views_compliance,
    views_ops,
)
from appliance.server.console.blueprint import CONSOLE_HEADERS, bp
from appliance.server.console.pages import PAGES, Page

__all__ = ["CONSOLE_HEADERS", "PAGES", "Page", "bp"]
