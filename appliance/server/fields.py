"""Field types shared by the request bodies of several resources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

__all__ = ["Text", "plain_digits"]


def _no_surrogates(value: str) -> str:
    # JSON lets "\ud800" through as a lone surrogate: no encoder downstream (ledger, store) can write it.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate (\\ud800-\\udfff); send valid Unicode") from None
    return value


#: A string that is valid Unicode (no lone surrogates).
Text = Annotated[str, AfterValidator(_no_surrogates)]


def plain_digits(max_len: int, what: str) -> BeforeValidator:
    """Accept a URL's number only as plain ASCII digits: lax int parsing takes "+5", "5.0" and "1_000"."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= max_len):
            raise ValueError(f"must be {what}")
        return value

    validator: Callable[[Any], Any] = check
    return BeforeValidator(validator)
