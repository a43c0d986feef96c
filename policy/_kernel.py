"""Picks the compiled phrase-matching kernel once at import, or its Python twin.

Set ``APPLIANCE_NO_EXTENSIONS=1`` to force the pure-Python twin (the test suite runs every kernel case
both ways). The choice is made here, before any caller can pass settings in, which is why this is the
one place in the policy engine that looks at the environment.
"""

from __future__ import annotations

import os

from policy import _ac_py

__all__ = ["IMPLEMENTATION", "Automaton", "Normalizer"]

Automaton: type = _ac_py.Automaton
Normalizer: type = _ac_py.Normalizer
IMPLEMENTATION = "py"

if os.environ.get("APPLIANCE_NO_EXTENSIONS", "") not in ("1", "true", "yes"):
    try:
        from ext import _ac as _compiled
    except ImportError:  # no compiler at install time: the twin serves
        pass
    else:
        Automaton = _compiled.Automaton
        Normalizer = _compiled.Normalizer
        IMPLEMENTATION = "c"
