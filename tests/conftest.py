"""Shared test plumbing: known-answer vectors are data files under ``tests/vectors/``.

``load_vector("rfc6962/.../x.json")`` parses one file; the ``vectors`` fixture hands tests that function.
To parametrize a test over vector data, mark it::

    @pytest.mark.vectors("probe", "rfc6962/some-source/testdata/inclusion/*/*.json")  # one case per file
    @pytest.mark.vectors("case", "rfc6962/some-source/table.json", "inclusion_proofs")  # one per list item

The argument gets the parsed JSON; case ids are the file paths (relative to the glob's directory) or
``key[i]``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"
_RECURSION_LIMIT = sys.getrecursionlimit()


@pytest.fixture(autouse=True)
def _interpreter_recursion_limit() -> None:
    """Every test starts with the interpreter's own recursion limit.

    py_ecc and py-evm (imported by the Ethereum anchoring tests) raise it process-wide at import, and
    with a raised limit the tests that feed deeply nested input to a parser overflow the C stack (a
    segfault) instead of seeing the RecursionError the code turns into a clear refusal.
    """
    sys.setrecursionlimit(_RECURSION_LIMIT)


def load_vector(relpath: str | Path) -> Any:
    """Parse ``tests/vectors/<relpath>`` as JSON."""
    path = (VECTORS_DIR / relpath).resolve()
    if VECTORS_DIR not in path.parents:
        raise ValueError(f"vector path {relpath!r} leaves tests/vectors/; give a path relative to it")
    return json.loads(path.read_text("utf-8"))


@pytest.fixture(scope="session")
def vectors() -> Callable[[str | Path], Any]:
    return load_vector


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vectors(argname, glob, *keys): parametrize argname over tests/vectors files (or a list inside one)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for marker in metafunc.definition.iter_markers("vectors"):
        argname, pattern, *keys = marker.args
        paths = sorted(VECTORS_DIR.glob(pattern))
        if not paths:
            raise ValueError(f"@pytest.mark.vectors: no file under tests/vectors/ matches {pattern!r}")
        if keys:
            if len(paths) != 1:
                raise ValueError(
                    f"@pytest.mark.vectors: keys need exactly one file, {pattern!r} matches more"
                )
            data = load_vector(paths[0].relative_to(VECTORS_DIR))
            for key in keys:
                data = data[key]
            metafunc.parametrize(argname, data, ids=[f"{keys[-1]}[{i}]" for i in range(len(data))])
        else:
            base = VECTORS_DIR / Path(pattern.split("*", 1)[0]).parent
            metafunc.parametrize(
                argname,
                [load_vector(p.relative_to(VECTORS_DIR)) for p in paths],
                ids=[str(p.relative_to(base)) for p in paths],
            )


@pytest.fixture(scope="session")
def anvil() -> Iterator[str]:
    """A real local Ethereum node (anvil) on 127.0.0.1 and a free port for the session; its RPC URL.

    Accounts: ``support.anvil.Anvil.new_account`` funds a random one through ``anvil_setBalance``.
    """
    from support.anvil import Anvil, anvil_binary

    if anvil_binary() is None:
        pytest.skip("anvil is not installed (.tools/node_modules/.bin/anvil); `make tools` installs it")
    node = Anvil.start()
    try:
        yield node.url
    finally:
        node.close()
