"""Importing chain libraries without their process-wide side effects."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["keep_recursion_limit"]


@contextmanager
def keep_recursion_limit() -> Iterator[None]:
    """Restore ``sys.getrecursionlimit()`` after imports that raise it (py_ecc sets 100,000, py-evm 10,000).

    A raised limit turns a deeply nested request body in a server worker into a C stack overflow
    (a crashed worker) instead of a ``RecursionError`` the HTTP layer answers with a 4xx.
    """
    limit = sys.getrecursionlimit()
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)
