"""Format-preserving encryption of digit strings (NIST SP 800-38G Rev. 1 FF3-1, via the ``ff3`` package).

The output has the input's length and separators and only digits change, so systems that check a
card or account number's shape keep working, and the key holder can ``decrypt``. ``keep_prefix`` /
``keep_last`` leave a card's IIN or last four in clear. The 7-byte tweak is derived from the entity
type (or set per profile), so a value encrypts the same way everywhere in a tenant and joins work.

Limits, by design of FF3-1: the encrypted part must have 6 to 56 digits (radix 10 needs
10^len >= 1,000,000). Outside that range — short codes, or a prefix/suffix that leaves too few
digits in the middle — the operator falls back to partial masking of the middle with ``*``, which
is *not* reversible; ``decrypt`` then refuses. FPE is unauthenticated: decrypting with the wrong
key yields other digits, not an error. Check digits (Luhn, GB 11643) are not preserved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ff3 import FF3Cipher
from pydantic import Field, field_validator

from appliance.masking.errors import TokenError
from appliance.masking.operators.base import Operator, OperatorContext, OperatorParams
from appliance.masking.operators.partial import mask_partial

__all__ = ["FpeOperator", "ff3_1_decrypt", "ff3_1_encrypt"]

MIN_DIGITS = 6  # ceil(log10(1_000_000)): the FF3-1 minimum domain for radix 10
MAX_DIGITS = 56  # 2 * floor(96 / log2(10))
_TWEAK_LABEL = b"appliance/masking/fpe-tweak/v1\x00"
_FULLWIDTH_ZERO = ord("０")
_DIGITS = "0123456789"


def _cipher(key: bytes, tweak: bytes, alphabet: str) -> FF3Cipher:
    if alphabet == _DIGITS:
        return FF3Cipher(key.hex(), tweak.hex(), 10)
    return FF3Cipher.withCustomAlphabet(key.hex(), tweak.hex(), alphabet)


def ff3_1_encrypt(key: bytes, tweak: bytes, plaintext: str, alphabet: str = _DIGITS) -> str:
    """FF3-1 with a 56-bit tweak; exposed so tests can check the ``ff3`` package's NIST/ACVP vectors."""
    if len(tweak) != 7:
        raise ValueError("FF3-1 takes a 7-byte (56-bit) tweak")
    return str(_cipher(key, tweak, alphabet).encrypt(plaintext))


def ff3_1_decrypt(key: bytes, tweak: bytes, ciphertext: str, alphabet: str = _DIGITS) -> str:
    """Inverse of :func:`ff3_1_encrypt`."""
    if len(tweak) != 7:
        raise ValueError("FF3-1 takes a 7-byte (56-bit) tweak")
    return str(_cipher(key, tweak, alphabet).decrypt(ciphertext))


def _digit(c: str) -> str | None:
    if "0" <= c <= "9":
        return c
    if "０" <= c <= "９":
        return chr(ord(c) - _FULLWIDTH_ZERO + 48)
    return None


class FpeParams(OperatorParams):
    keep_prefix: int = Field(default=0, ge=0, le=32)
    keep_last: int = Field(default=0, ge=0, le=32)
    tweak: str | None = None  # 14 hex digits; default: derived from the entity type

    @field_validator("tweak")
    @classmethod
    def _tweak(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ok = len(bytes.fromhex(v)) == 7
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"tweak {v!r} must be 14 hex digits (7 bytes, FF3-1), or left out")
        return v


class FpeOperator(Operator[FpeParams]):
    name = "fpe"
    Params = FpeParams

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._ciphers: dict[bytes, FF3Cipher] = {}
        self._tweaks: dict[str, str] = {}

    def _tweak_hex(self, entity_type: str) -> str:
        t = self._tweaks.get(entity_type)
        if t is None:
            if self.params.tweak is not None:
                t = self.params.tweak
            else:
                t = hashlib.sha256(_TWEAK_LABEL + entity_type.encode()).digest()[:7].hex()
            self._tweaks[entity_type] = t
        return t

    def _ff3(self, key: bytes) -> FF3Cipher:
        c = self._ciphers.get(key)
        if c is None:
            if len(self._ciphers) >= 64:
                self._ciphers.clear()
            c = self._ciphers[key] = FF3Cipher(key.hex(), "00" * 7, 10)
        return c

    def _split(self, value: str) -> tuple[list[int], str, int, int]:
        positions = [i for i, c in enumerate(value) if _digit(c) is not None]
        digits = "".join(_digit(value[i]) or "" for i in positions)
        lo = self.params.keep_prefix
        hi = len(digits) - self.params.keep_last
        return positions, digits, lo, hi

    @staticmethod
    def _write(value: str, positions: list[int], digits: str, lo: int, hi: int, middle: str) -> str:
        chars = list(value)
        for i, d in zip(positions[lo:hi], middle, strict=True):
            # Write the digit back in the width it had, so full-width input stays full-width.
            chars[i] = chr(ord(d) - 48 + _FULLWIDTH_ZERO) if chars[i] >= "０" else d
        return "".join(chars)

    def apply(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        positions, digits, lo, hi = self._split(value)
        if not MIN_DIGITS <= hi - lo <= MAX_DIGITS:
            return mask_partial(value, self.params.keep_prefix, self.params.keep_last)
        middle = self._ff3(ctx.keys.fpe_key).encrypt_with_tweak(digits[lo:hi], self._tweak_hex(entity_type))
        return self._write(value, positions, digits, lo, hi, middle)

    def decrypt(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        """Recover what ``apply`` encrypted; TokenError when the value was masked, not encrypted."""
        positions, digits, lo, hi = self._split(value)
        if not MIN_DIGITS <= hi - lo <= MAX_DIGITS:
            raise TokenError(
                "this value was not format-preserving encrypted (too few digits, so it was partially "
                "masked) and cannot be decrypted"
            )
        middle = self._ff3(ctx.keys.fpe_key).decrypt_with_tweak(digits[lo:hi], self._tweak_hex(entity_type))
        return self._write(value, positions, digits, lo, hi, middle)
