"""Reversible tokens: ``tok_CN_RESIDENT_ID_<base32>``, deterministic AES-SIV under the tenant's key.

Deterministic so the same ID gives the same token in every transcript (joins work, as with
pseudonyms), and reversible so an escalation can recover the value through the audited
de-tokenise call. AES-SIV (RFC 5297) is the standard deterministic AEAD: equal plaintexts are the
only thing it reveals, and the entity type as associated data means a token cannot be replayed as
another type. The type sits in clear in the token so ``detokenize`` knows which associated data to
use; the body is lower-case base32 without padding because base64url's ``_`` would make the
``tok_<TYPE>_`` split ambiguous. Every failure to de-tokenise is one opaque TokenError: telling
"malformed" from "wrong key" from "tampered" would help no legitimate caller.

Erasure cannot take back a deterministic token already handed out (and the tenant key that opens it
serves every other customer), so the tokens of an erased subject go on a revocation list that
``detokenize`` consults: ``revoked(token)`` true means the same opaque refusal.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from appliance.masking.errors import TokenError
from appliance.masking.operators.base import MaskingKeys, Operator, OperatorContext, OperatorParams

__all__ = ["TOKEN_PATTERN", "TokenOperator", "detokenize", "token_for"]

_PREFIX = "tok_"
#: What a token looks like in text (for scanners that want to find tokens to de-tokenise).
TOKEN_PATTERN = re.compile(r"tok_([A-Z][A-Z0-9_]*[A-Z0-9])_([a-z2-7]{26,})")
_OPAQUE = "the token cannot be de-tokenised (unknown, altered or issued under another key)"
_CIPHERS: dict[bytes, AESSIV] = {}


def _siv(key: bytes) -> AESSIV:
    siv = _CIPHERS.get(key)
    if siv is None:
        if len(_CIPHERS) >= 64:
            _CIPHERS.clear()
        siv = _CIPHERS[key] = AESSIV(key)
    return siv


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _b32decode(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def token_for(value: str, entity_type: str, keys: MaskingKeys) -> str:
    """The token ``value`` of type ``entity_type`` gets under ``keys`` (the empty value stays empty)."""
    if not value:  # AES-SIV refuses empty input; an empty value has nothing to hide
        return value
    sealed = _siv(keys.token_key).encrypt(value.encode("utf-8"), [entity_type.encode()])
    return f"{_PREFIX}{entity_type}_{_b32encode(sealed)}"


def detokenize(
    token: str, keys: MaskingKeys, revoked: Callable[[str], bool] | None = None
) -> tuple[str, str]:
    """``(entity_type, value)`` of a token issued under ``keys``; TokenError (opaque) for anything else.

    ``revoked``: the revocation list (tokens of erased subjects), refused like any other bad token.
    """
    m = TOKEN_PATTERN.fullmatch(token) if isinstance(token, str) else None
    if m is None or (revoked is not None and revoked(token)):
        raise TokenError(_OPAQUE)
    entity_type, body = m.groups()
    try:
        value = _siv(keys.token_key).decrypt(_b32decode(body), [entity_type.encode()])
        return entity_type, value.decode("utf-8")
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise TokenError(_OPAQUE) from exc


class TokenOperator(Operator[OperatorParams]):
    name = "token"
    Params = OperatorParams

    def apply(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        return token_for(value, entity_type, ctx.keys)

    def detokenize(self, token: str, ctx: OperatorContext) -> tuple[str, str]:
        """Reverse ``apply``; the caller checks the role and records the call in the ledger."""
        return detokenize(token, ctx.keys)
