"""Field types shared by the request bodies of several resources."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

__all__ = ["Text"]


def _no_surrogates(value: str) -> str:
    # JSON lets "\ud800" through as a lone surrogate: no encoder downstream (ledger, store) can write it.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate (\\ud800-\\udfff); send valid Unicode") from None
    return value


#: A string that is valid Unicode (no lone surrogates).
Text = Annotated[str, AfterValidator(_no_surrogates)]
