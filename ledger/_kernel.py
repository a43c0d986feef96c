"""Picks the compiled ledger kernels once at import, or their Python twins.

Set ``APPLIANCE_NO_EXTENSIONS=1`` to force the pure-Python twin (the test
suite runs every kernel case both ways). This is the one place in the ledger
that looks at the environment, because the choice must be made before any
caller can pass settings in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ledger import _chain_py, _merkle_py

__all__ = ["IMPLEMENTATION", "encode_chain", "extend_tree", "hash_leaves", "plain_json"]

hash_leaves = _merkle_py.hash_leaves
extend_tree = _merkle_py.extend_tree
encode_chain = _chain_py.encode_chain
#: A compiled fast accept for entry values (see ext/_chain.pyx), or None: the Python
#: validator in ledger.entry is the authority either way, so it has no twin.
plain_json: Callable[[Any], bool] | None = None
IMPLEMENTATION = "py"

if os.environ.get("APPLIANCE_NO_EXTENSIONS", "") not in ("1", "true", "yes"):
    try:
        from ext import _chain as _compiled_chain
        from ext import _merkle as _compiled
    except ImportError:  # no compiler at install time: the twins serve
        pass
    else:
        hash_leaves = _compiled.hash_leaves
        extend_tree = _compiled.extend_tree
        encode_chain = _compiled_chain.encode_chain
        plain_json = _compiled_chain.plain_json
        IMPLEMENTATION = "c"
