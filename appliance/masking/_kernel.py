"""Picks the compiled PII scanner once at import, or its Python twin.

Set ``APPLIANCE_NO_EXTENSIONS=1`` to force the pure-Python twin (the test suite runs every scanner
case both ways). The choice is made here, before any caller can pass settings in, which is why this
is the one place in the masking engine that looks at the environment. ``TYPES`` and ``VALIDATORS``
come from the twin: the compiled module exports the same tuples and a test holds them equal.
"""

from __future__ import annotations

import os

from appliance.masking import _scan_py

__all__ = ["IMPLEMENTATION", "TYPES", "VALIDATORS", "Scanner"]

TYPES = _scan_py.TYPES
VALIDATORS = _scan_py.VALIDATORS
Scanner: type = _scan_py.Scanner
IMPLEMENTATION = "py"

if os.environ.get("APPLIANCE_NO_EXTENSIONS", "") not in ("1", "true", "yes"):
    try:
        from ext import _scan as _compiled
    except ImportError:  # no compiler at install time: the twin serves
        pass
    else:
        Scanner = _compiled.Scanner
        IMPLEMENTATION = "c"
