"""Encrypted columns: values packed into CKKS or BFV ciphertexts, one segment per visible-attribute value.

The server may see a few categorical attributes (region, segment, product...). Rows are grouped by the
combination of those values into *segments*, and each segment is packed into its own ciphertexts, so a
filter or a GROUP BY on a visible attribute only picks segments: no encrypted masks, no extra
multiplication. Within a segment, slot ``i`` of ciphertext ``j`` holds row ``row_ids[j * slots + i]``.

What the server knows about a column is exactly: its name, scheme and kind, the visible attributes and
the row ids of each segment (hence row counts), the public magnitude bound, whether it has a validity
mask, and the histogram edges. Nulls are NOT visible: a column that holds nulls carries an encrypted 0/1
validity mask beside its values (a null encrypts as 0 in the values, so it adds nothing to SUM, and the
mask gives COUNT and the denominator of MEAN/VARIANCE). A plaintext non-null count per segment would be
cheaper but tells the server how many nulls each segment has; the mask tells it nothing, at the price of
a second set of ciphertexts for nullable columns only. Whether a column is nullable is public (as in a
schema); pass ``nullable=True`` to add the mask even when today's data has no null.

The magnitude bound is what lets the engine refuse a result that would overflow (BFV's plaintext modulus,
CKKS's modulus headroom) instead of returning a wrong number. Declare it from the schema
(``bound=1e7``); left out, it is the power of two above the largest |value|, which discloses only that.

Histograms: the bucket edges are declared when encrypting, and each bucket becomes an encrypted 0/1
indicator vector, so a histogram is a set of sums, never a comparison on ciphertexts. Bucket ``i`` is
``edges[i] <= x < edges[i + 1]``; values outside every bucket and nulls count in none.

``append`` encrypts only the new rows: they fill the free slots of a segment's last ciphertext (by adding
a fresh ciphertext that is zero everywhere else) and then new ciphertexts. ``save`` writes each
ciphertext to a file named by its SHA-256, so an append rewrites only the ciphertexts it changed, and the
manifest lists every digest: an altered or truncated file fails ``load`` with ``CiphertextInvalid``.

Paillier columns (``encrypt_paillier_column``) are the other kind: one ciphertext per record, for
per-record lookups and for partners who add to our values under the public key. ``phe`` takes ~0.4 s per
value at 3072 bits, so encrypt only the records (or the small table) that lookups need.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import secrets
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import tenseal.sealapi as sa
from phe import paillier

from appliance.privacy.errors import CiphertextInvalid, KeyUnavailable, QueryInvalid
from appliance.privacy.keys import HEContext, PublicContexts, Scheme, SecretContexts

__all__ = [
    "EncryptedColumn",
    "Kind",
    "PaillierColumn",
    "Segment",
    "VisibleValue",
    "decode_paillier",
    "encrypt_column",
    "encrypt_paillier_column",
    "load_column",
]

Kind = Literal["value", "flag"]
VisibleValue = str | int | bool | None
_FORMAT = "appliance-encrypted-column/1"
_PAILLIER_FORMAT = "appliance-paillier-column/1"


@dataclass(frozen=True, eq=False)
class Segment:
    """The rows of one combination of visible values and their ciphertexts (slot order = ``row_ids``)."""

    key: tuple[VisibleValue, ...]
    row_ids: np.ndarray = field(repr=False)
    values: tuple[Any, ...] = field(repr=False)
    validity: tuple[Any, ...] | None = field(repr=False)
    indicators: tuple[tuple[Any, ...], ...] = field(repr=False)

    @property
    def rows(self) -> int:
        return len(self.row_ids)

    def ciphertexts(self) -> list[Any]:
        out = list(self.values)
        out.extend(self.validity or ())
        for bucket in self.indicators:
            out.extend(bucket)
        return out


@dataclass(frozen=True, eq=False)
class EncryptedColumn:
    """One column of one table, encrypted under one key id; immutable (``append`` returns a new one)."""

    name: str
    scheme: Scheme
    kind: Kind
    key_id: str
    params: Mapping[str, Any] = field(repr=False)
    visible: tuple[str, ...]
    segments: tuple[Segment, ...] = field(repr=False)
    bound: float
    nullable: bool
    buckets: tuple[float, ...] | None
    slot_count: int
    scale_bits: int = 0  # CKKS: log2 of the scale of the values (see CKKSParameters); BFV: 0
    mask_bits: int = 0  # CKKS: log2 of the scale of the validity mask and the histogram indicators

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.segments)

    @property
    def ciphertext_count(self) -> int:
        return sum(len(s.ciphertexts()) for s in self.segments)

    @cached_property
    def by_key(self) -> dict[tuple[VisibleValue, ...], Segment]:
        return {s.key: s for s in self.segments}

    @cached_property
    def layout_digest(self) -> str:
        """SHA-256 of the visible attributes and the row ids of every segment: columns whose slots line
        up (so their ciphertexts can be multiplied slot by slot) have the same digest."""
        h = hashlib.sha256(json.dumps(list(self.visible)).encode())
        for seg in sorted(self.segments, key=lambda s: _key_json(s.key)):
            h.update(_key_json(seg.key).encode() + b"\x00")
            h.update(np.ascontiguousarray(seg.row_ids, dtype="<i8").tobytes())
        return h.hexdigest()

    @cached_property
    def row_ids(self) -> np.ndarray:
        """Every row id, in segment then slot order."""
        if not self.segments:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([s.row_ids for s in self.segments])

    def append(
        self,
        public: PublicContexts | SecretContexts,
        values: np.ndarray,
        row_ids: np.ndarray,
        visible: Mapping[str, np.ndarray],
    ) -> EncryptedColumn:
        """The column with new rows: they fill the last ciphertext of their segment, then new ones."""
        ctx = public.scheme(self.scheme)
        if ctx.key_id != self.key_id:
            raise KeyUnavailable(
                f"column {self.name!r} is under key id {self.key_id}; append with the public contexts of "
                f"that key id (KeyRing.public({self.key_id!r})), or re-encrypt the column under {ctx.key_id}"
            )
        if set(visible) != set(self.visible):
            raise QueryInvalid(
                f"column {self.name!r} is segmented by {list(self.visible)}; append rows with exactly "
                f"those visible attributes (got {sorted(visible)})"
            )
        vals, ids = _check_rows(self.name, values, row_ids, visible)
        clash = _member(ids, self.row_ids)
        if clash.any():
            raise QueryInvalid(
                f"column {self.name!r} already has {int(clash.sum())} of the appended row ids "
                f"(e.g. row id {int(ids[clash][0])}); append only new rows"
            )
        _check_values(self.name, vals, ids, self.scheme, self.kind, ctx, self.bound, self.nullable)
        by_key = dict(self.by_key)
        order = [s.key for s in self.segments]
        for key, idx in _segment_rows(self.visible, visible, len(vals)):
            old = by_key.get(key)
            if old is None:
                order.append(key)
            by_key[key] = _encrypt_segment(
                ctx, key, vals[idx], ids[idx], self.nullable, self.buckets, old, self._scales()
            )
        return EncryptedColumn(
            self.name,
            self.scheme,
            self.kind,
            self.key_id,
            self.params,
            self.visible,
            tuple(by_key[k] for k in order),
            self.bound,
            self.nullable,
            self.buckets,
            self.slot_count,
            self.scale_bits,
            self.mask_bits,
        )

    def _scales(self) -> tuple[float | None, float | None]:
        if self.scheme != "ckks":
            return None, None
        return float(2**self.scale_bits), float(2**self.mask_bits)

    # --- on disk -----------------------------------------------------------------------------------

    def manifest(self, digests: Mapping[int, str] | None = None) -> dict[str, Any]:
        """The public description of the column (``digests``: id(ciphertext) -> SHA-256 of its file)."""

        def names(cts: Iterable[Any]) -> list[str]:
            return [digests[id(c)] for c in cts] if digests is not None else []

        return {
            "format": _FORMAT,
            "name": self.name,
            "scheme": self.scheme,
            "kind": self.kind,
            "key_id": self.key_id,
            "params": dict(self.params),
            "visible": list(self.visible),
            "bound": self.bound,
            "nullable": self.nullable,
            "buckets": None if self.buckets is None else list(self.buckets),
            "slot_count": self.slot_count,
            "scale_bits": self.scale_bits,
            "mask_bits": self.mask_bits,
            "rows": self.rows,
            "segments": [
                {
                    "key": list(s.key),
                    "rows": s.rows,
                    "values": names(s.values),
                    "validity": None if s.validity is None else names(s.validity),
                    "indicators": [names(b) for b in s.indicators],
                }
                for s in self.segments
            ],
        }

    def save(self, directory: str | Path, public: PublicContexts | SecretContexts) -> Path:
        """Write the column to ``directory``; files already there (same digest) are not rewritten."""
        d = Path(directory)
        (d / "ct").mkdir(parents=True, exist_ok=True)
        ctx = public.scheme(self.scheme)
        cts = [c for s in self.segments for c in s.ciphertexts()]
        blobs = ctx.to_bytes(cts)
        digests: dict[int, str] = {}
        for ct, blob in zip(cts, blobs, strict=True):
            digest = hashlib.sha256(blob).hexdigest()
            digests[id(ct)] = digest
            path = d / "ct" / f"{digest}.seal"
            if not path.exists():
                _atomic_write(path, blob)
        rows = zlib.compress(_delta(self.row_ids).tobytes(), 6)
        _atomic_write(d / "rows.bin", rows)
        manifest = self.manifest(digests)
        manifest["row_ids"] = {"file": "rows.bin", "sha256": hashlib.sha256(rows).hexdigest()}
        _atomic_write(d / "manifest.json", json.dumps(manifest, indent=1).encode("utf-8"))
        keep = {f"{v}.seal" for v in digests.values()}
        for stale in (d / "ct").iterdir():
            if stale.name not in keep:
                stale.unlink()
        return d

    @classmethod
    def load(cls, directory: str | Path, public: PublicContexts | SecretContexts) -> EncryptedColumn:
        """Read a column saved by ``save``; every file is checked against the manifest's SHA-256."""
        d = Path(directory)
        m = _read_manifest(d, _FORMAT)
        name = m["name"]
        ctx = public.scheme(m["scheme"])
        if m["key_id"] != ctx.key_id:
            raise KeyUnavailable(
                f"column {name!r} was encrypted under key id {m['key_id']}; load it with the public "
                f"contexts of that key id (KeyRing.public({m['key_id']!r})), not {ctx.key_id}"
            )
        if m["params"] != dict(ctx.params):
            raise CiphertextInvalid(
                f"column {name!r}: its parameters differ from key id {ctx.key_id}'s; restore it"
            )
        rows_blob = _read_checked(d / m["row_ids"]["file"], m["row_ids"]["sha256"], name)
        try:
            row_ids = np.cumsum(np.frombuffer(zlib.decompress(rows_blob), dtype="<i8")).astype(np.int64)
        except zlib.error as exc:
            raise CiphertextInvalid(f"column {name!r}: rows.bin cannot be read; restore the column") from exc
        if len(row_ids) != m["rows"] or sum(s["rows"] for s in m["segments"]) != m["rows"]:
            raise CiphertextInvalid(
                f"column {name!r}: the row ids do not match the manifest; restore the column"
            )
        digests: list[str] = []
        for s in m["segments"]:
            digests.extend(s["values"])
            digests.extend(s["validity"] or ())
            for b in s["indicators"]:
                digests.extend(b)
        blobs = [_read_checked(d / "ct" / f"{h}.seal", h, name) for h in digests]
        parsed = iter(ctx.ciphertexts_from_bytes(blobs))
        segments = []
        offset = 0
        slots = int(m["slot_count"])
        for s in m["segments"]:
            n = int(s["rows"])
            want = -(-n // slots)
            if len(s["values"]) != want or (s["validity"] is not None and len(s["validity"]) != want):
                raise CiphertextInvalid(
                    f"column {name!r}: a segment has the wrong ciphertext count; restore it"
                )
            values = tuple(next(parsed) for _ in s["values"])
            validity = None if s["validity"] is None else tuple(next(parsed) for _ in s["validity"])
            indicators = tuple(tuple(next(parsed) for _ in b) for b in s["indicators"])
            segments.append(
                Segment(tuple(s["key"]), row_ids[offset : offset + n], values, validity, indicators)
            )
            offset += n
        return cls(
            name,
            m["scheme"],
            m["kind"],
            m["key_id"],
            m["params"],
            tuple(m["visible"]),
            tuple(segments),
            float(m["bound"]),
            bool(m["nullable"]),
            None if m["buckets"] is None else tuple(float(b) for b in m["buckets"]),
            slots,
            int(m["scale_bits"]),
            int(m["mask_bits"]),
        )


def encrypt_column(
    public: PublicContexts | SecretContexts,
    name: str,
    values: np.ndarray,
    row_ids: np.ndarray,
    visible: Mapping[str, np.ndarray],
    scheme: Scheme = "ckks",
    kind: Kind = "value",
    buckets: Sequence[float] | None = None,
    *,
    bound: float | None = None,
    nullable: bool | None = None,
) -> EncryptedColumn:
    """Encrypt one column (float64, NaN = null) of the rows ``row_ids``, segmented by ``visible``.

    ``scheme``: "ckks" (real values; relative error ~1e-9) or "bfv" (integers, exact). ``kind``: "value"
    or "flag" (0/1, usable in WHERE). ``bound``: public bound on |value| (see the module docstring).
    ``nullable``: None = a validity mask exactly when there are nulls.
    """
    if scheme not in ("ckks", "bfv"):
        raise QueryInvalid(f"column {name!r}: scheme {scheme!r} is not one of 'ckks', 'bfv'")
    if kind not in ("value", "flag"):
        raise QueryInvalid(f"column {name!r}: kind {kind!r} is not one of 'value', 'flag'")
    ctx = public.scheme(scheme)
    vals, ids = _check_rows(name, values, row_ids, visible)
    nulls = np.isnan(vals)
    if nullable is None:
        nullable = bool(nulls.any())
    present = np.abs(vals[~nulls])
    if kind == "flag":
        bound = 1.0
    elif bound is None:
        top = float(present.max()) if len(present) else 0.0
        bound = float(2 ** math.ceil(math.log2(max(top, 1.0))))
        if top >= bound:  # an exact power of two
            bound *= 2
    elif not (math.isfinite(bound) and bound > 0):
        raise QueryInvalid(f"column {name!r}: bound must be a positive finite number (got {bound!r})")
    bound = float(bound)
    if scheme == "bfv" and bound > ctx.max_plain:
        raise QueryInvalid(
            f"column {name!r}: bound {bound:,.0f} exceeds what BFV represents ({ctx.max_plain:,}); "
            "encrypt it under ckks"
        )
    edges = _check_buckets(name, buckets)
    _check_values(name, vals, ids, scheme, kind, ctx, bound, nullable)
    names = tuple(sorted(visible))
    scale_bits = ctx.column_scale_bits(kind, bound)
    mask_bits = ctx.flag_bits
    scales = (float(2**scale_bits), float(2**mask_bits)) if scheme == "ckks" else (None, None)
    segments = tuple(
        _encrypt_segment(ctx, key, vals[idx], ids[idx], nullable, edges, None, scales)
        for key, idx in _segment_rows(names, visible, len(vals))
    )
    return EncryptedColumn(
        name,
        scheme,
        kind,
        ctx.key_id,
        dict(ctx.params),
        names,
        segments,
        bound,
        nullable,
        edges,
        ctx.slot_count,
        scale_bits,
        mask_bits,
    )


def load_column(
    directory: str | Path, public: PublicContexts | SecretContexts
) -> EncryptedColumn | PaillierColumn:
    """Load whichever kind of column ``directory`` holds."""
    fmt = _read_manifest(Path(directory), None)["format"]
    if fmt == _PAILLIER_FORMAT:
        return PaillierColumn.load(directory, public)
    return EncryptedColumn.load(directory, public)


# --- Paillier -------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PaillierColumn:
    """Per-record Paillier ciphertexts (row id -> (ciphertext, exponent)) for lookups.

    A record's plaintext is ``2 * mantissa + valid`` (phe's base-16 encoding of the value, with a validity
    bit below it), so a null is indistinguishable from a value to whoever holds the column.
    """

    name: str
    key_id: str
    n: int = field(repr=False)
    records: Mapping[int, tuple[int, int]] = field(repr=False)

    scheme = "paillier"

    def lookup(self, ids: Sequence[int]) -> list[tuple[int, int, int]]:
        """``(row id, ciphertext, exponent)`` of each requested record."""
        missing = [i for i in ids if i not in self.records]
        if missing:
            raise QueryInvalid(
                f"column {self.name!r} has no record for {len(missing)} of the requested ids "
                f"(e.g. {missing[0]}); look up ids that were encrypted"
            )
        return [(int(i), *self.records[i]) for i in ids]

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        body = json.dumps(
            [[rid, str(c), e] for rid, (c, e) in sorted(self.records.items())], separators=(",", ":")
        ).encode()
        _atomic_write(d / "records.json", body)
        manifest = {
            "format": _PAILLIER_FORMAT,
            "name": self.name,
            "key_id": self.key_id,
            "n_sha256": hashlib.sha256(str(self.n).encode()).hexdigest(),
            "rows": len(self.records),
            "records": {"file": "records.json", "sha256": hashlib.sha256(body).hexdigest()},
        }
        _atomic_write(d / "manifest.json", json.dumps(manifest, indent=1).encode())
        return d

    @classmethod
    def load(cls, directory: str | Path, public: PublicContexts | SecretContexts) -> PaillierColumn:
        d = Path(directory)
        m = _read_manifest(d, _PAILLIER_FORMAT)
        name = m["name"]
        n = public.paillier.n if isinstance(public, PublicContexts) else public.paillier_public.n
        if m["key_id"] != public.key_id or m["n_sha256"] != hashlib.sha256(str(n).encode()).hexdigest():
            raise KeyUnavailable(
                f"paillier column {name!r} was encrypted under key id {m['key_id']}; load it with "
                f"KeyRing.public({m['key_id']!r})"
            )
        body = _read_checked(d / m["records"]["file"], m["records"]["sha256"], name)
        records: dict[int, tuple[int, int]] = {}
        nsquare = n * n
        try:
            for rid, c, e in json.loads(body):
                c = int(c)
                if not 0 < c < nsquare:
                    raise ValueError("ciphertext out of range")
                records[int(rid)] = (c, int(e))
        except (ValueError, TypeError) as exc:
            raise CiphertextInvalid(
                f"paillier column {name!r}: a record cannot be parsed; restore it"
            ) from exc
        if len(records) != m["rows"]:
            raise CiphertextInvalid(f"paillier column {name!r}: record count differs from the manifest")
        return cls(name, m["key_id"], n, records)


def encrypt_paillier_column(
    public: PublicContexts | SecretContexts, name: str, values: np.ndarray, row_ids: np.ndarray
) -> PaillierColumn:
    """Encrypt one value per record (float or integer array; NaN = null) under the Paillier key."""
    pk = public.paillier if isinstance(public, PublicContexts) else public.paillier_public
    ids = np.asarray(row_ids)
    vals = np.asarray(values)
    if vals.ndim != 1 or ids.shape != vals.shape or not np.issubdtype(ids.dtype, np.integer):
        raise QueryInvalid(
            f"paillier column {name!r}: values and row_ids must be 1-D of equal length, ids integer"
        )
    if _repeats(ids):
        raise QueryInvalid(f"paillier column {name!r}: row ids repeat; give each record once")
    records: dict[int, tuple[int, int]] = {}
    for rid, v in zip(ids.tolist(), vals.tolist(), strict=True):
        if isinstance(v, float) and not math.isfinite(v):
            if not math.isnan(v):
                raise QueryInvalid(
                    f"paillier column {name!r}: row id {rid}: infinite value; use finite or NaN"
                )
            mantissa, exponent, valid = 0, 0, 0
        else:
            enc = paillier.EncodedNumber.encode(pk, v)
            mantissa = enc.encoding if enc.encoding <= pk.max_int else enc.encoding - pk.n
            exponent, valid = enc.exponent, 1
        records[int(rid)] = (pk.raw_encrypt((2 * mantissa + valid) % pk.n), exponent)
    return PaillierColumn(name, public.key_id, pk.n, records)


def decode_paillier(
    private: paillier.PaillierPrivateKey, ciphertext: int, exponent: int
) -> float | int | None:
    """The custodian's side of the record encoding (see ``PaillierColumn``)."""
    pk = private.public_key
    x = private.raw_decrypt(ciphertext)
    if x >= pk.n - pk.max_int:
        x -= pk.n
    elif x > pk.max_int:
        raise CiphertextInvalid(
            "a paillier record decrypts out of range; it was altered or is of another key"
        )
    valid = x & 1
    if not valid:
        return None
    mantissa = (x - valid) >> 1
    value: float | int = paillier.EncodedNumber(pk, mantissa % pk.n, exponent).decode()
    return value


# --- helpers ----------------------------------------------------------------------------------------------


def _repeats(ids: np.ndarray) -> bool:
    """Whether an id occurs twice (a sort, not numpy's hash-based unique, which is slow on 1e6 ids)."""
    if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
        return False
    s = np.sort(ids)
    return bool(np.any(s[1:] == s[:-1]))


def _member(ids: np.ndarray, existing: np.ndarray) -> np.ndarray:
    """``ids`` that are in ``existing``, by binary search."""
    if not len(existing):
        return np.zeros(len(ids), dtype=bool)
    s = np.sort(existing)
    pos = np.minimum(np.searchsorted(s, ids), len(s) - 1)
    return np.asarray(s[pos] == ids)


def _key_json(key: tuple[VisibleValue, ...]) -> str:
    return json.dumps(list(key), separators=(",", ":"))


def _normalize(v: Any) -> VisibleValue:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, str | int | bool):
        return v
    raise QueryInvalid(
        f"visible attribute value {v!r} is not categorical; visible attributes hold text or integer codes"
    )


def _check_rows(
    name: str, values: np.ndarray, row_ids: np.ndarray, visible: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    vals = np.asarray(values, dtype=np.float64)
    ids = np.asarray(row_ids)
    if vals.ndim != 1 or ids.shape != vals.shape:
        raise QueryInvalid(f"column {name!r}: values and row_ids must be 1-D arrays of equal length")
    if not np.issubdtype(ids.dtype, np.integer):
        raise QueryInvalid(f"column {name!r}: row_ids must be integers (got {ids.dtype})")
    ids = ids.astype(np.int64)
    for attr, arr in visible.items():
        if len(arr) != len(vals):
            raise QueryInvalid(
                f"column {name!r}: visible attribute {attr!r} has {len(arr)} values for {len(vals)} rows"
            )
    if _repeats(ids):
        raise QueryInvalid(f"column {name!r}: row ids repeat; give each row once")
    if np.isinf(vals).any():
        raise QueryInvalid(f"column {name!r}: infinite values; use finite numbers (NaN for null)")
    return vals, ids


def _check_values(
    name: str,
    vals: np.ndarray,
    ids: np.ndarray,
    scheme: str,
    kind: str,
    ctx: HEContext,
    bound: float,
    nullable: bool,
) -> None:
    nulls = np.isnan(vals)
    if nulls.any() and not nullable:
        raise QueryInvalid(
            f"column {name!r} has nulls (e.g. row id {int(ids[nulls][0])}) but no validity mask; "
            "encrypt it with nullable=True (or None)"
        )
    present = np.where(nulls, 0.0, vals)
    if kind == "flag":
        bad = ~nulls & (vals != 0) & (vals != 1)
        if bad.any():
            raise QueryInvalid(
                f"flag column {name!r}: row id {int(ids[bad][0])} is not 0 or 1; flags hold 0/1"
            )
    over = np.abs(present) > bound
    if over.any():
        raise QueryInvalid(
            f"column {name!r}: row id {int(ids[over][0])} exceeds the declared bound |x| <= {bound:g}; "
            "declare a larger bound when encrypting the column"
        )
    if scheme == "bfv":
        frac = present != np.round(present)
        if frac.any():
            raise QueryInvalid(
                f"bfv column {name!r}: row id {int(ids[frac][0])} is not an integer; BFV holds integers "
                "(scale them, e.g. cents, or encrypt the column under ckks)"
            )


def _check_buckets(name: str, buckets: Sequence[float] | None) -> tuple[float, ...] | None:
    if buckets is None:
        return None
    edges = tuple(float(b) for b in buckets)
    if len(edges) < 2 or any(not (a < b) for a, b in itertools.pairwise(edges)):
        raise QueryInvalid(
            f"column {name!r}: histogram buckets need at least two strictly increasing edges "
            f"(got {list(buckets)})"
        )
    if any(math.isnan(e) for e in edges):
        raise QueryInvalid(f"column {name!r}: a histogram edge is NaN")
    return edges


def _segment_rows(
    names: Sequence[str], visible: Mapping[str, np.ndarray], n: int
) -> list[tuple[tuple[VisibleValue, ...], np.ndarray]]:
    """(key, row indices in input order) for each combination of visible values, in first-seen order."""
    if n == 0:
        return []
    if not names:
        return [((), np.arange(n))]
    codes = np.zeros(n, dtype=np.int64)
    uniques = []
    for attr in names:
        c, u = pd.factorize(np.asarray(visible[attr], dtype=object), use_na_sentinel=False)
        uniques.append([_normalize(v) for v in u])
        codes = codes * max(len(u), 1) + c
    first = {}
    for i, code in enumerate(pd.unique(codes).tolist()):
        first[code] = i
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    cuts = np.flatnonzero(np.diff(sorted_codes)) + 1
    out = []
    for chunk in np.split(order, cuts):
        code = int(codes[chunk[0]])
        key = []
        for u in reversed(uniques):
            code, j = divmod(code, max(len(u), 1))
            key.append(u[j])
        out.append((first[int(codes[chunk[0]])], tuple(reversed(key)), chunk))
    out.sort(key=lambda t: t[0])
    keys = [k for _, k, _ in out]
    if len(set(keys)) != len(keys):
        raise QueryInvalid("visible attribute values must be distinct after normalisation (e.g. 1 and True)")
    return [(k, idx) for _, k, idx in out]


def _stream(
    ctx: HEContext, data: np.ndarray, offset: int, last: Any | None, scale: float | None
) -> tuple[Any | None, list[Any]]:
    """Encrypt ``data`` from slot ``offset`` of ``last``: (replacement for ``last``, new ciphertexts)."""
    slots = ctx.slot_count
    pos, replaced, fresh = 0, None, []
    if offset and len(data):
        take = min(slots - offset, len(data))
        buf = np.zeros(slots, dtype=np.float64)
        buf[offset : offset + take] = data[:take]
        replaced = sa.Ciphertext()
        ctx.evaluator.add(last, ctx.encrypt(buf, scale), replaced)
        pos = take
    while pos < len(data):
        fresh.append(ctx.encrypt(data[pos : pos + slots], scale))
        pos += slots
    return replaced, fresh


def _extend(
    ctx: HEContext, old: tuple[Any, ...], data: np.ndarray, offset: int, scale: float | None
) -> tuple[Any, ...]:
    replaced, fresh = _stream(ctx, data, offset, old[-1] if offset else None, scale)
    kept = (*old[:-1], replaced) if replaced is not None else old
    return (*kept, *fresh)


def _encrypt_segment(
    ctx: HEContext,
    key: tuple[VisibleValue, ...],
    vals: np.ndarray,
    ids: np.ndarray,
    nullable: bool,
    edges: tuple[float, ...] | None,
    old: Segment | None,
    scales: tuple[float | None, float | None],
) -> Segment:
    nulls = np.isnan(vals)
    x = np.where(nulls, 0.0, vals)
    offset = old.rows % ctx.slot_count if old is not None else 0
    prev_values: tuple[Any, ...] = old.values if old is not None else ()
    values = _extend(ctx, prev_values, x, offset, scales[0])
    validity = None
    if nullable:
        prev_valid: tuple[Any, ...] = old.validity or () if old is not None else ()
        validity = _extend(ctx, prev_valid, (~nulls).astype(np.float64), offset, scales[1])
    indicators: tuple[tuple[Any, ...], ...] = ()
    if edges is not None:
        found = []
        for i in range(len(edges) - 1):
            inside = (~nulls & (vals >= edges[i]) & (vals < edges[i + 1])).astype(np.float64)
            prev = old.indicators[i] if old is not None else ()
            found.append(_extend(ctx, prev, inside, offset, scales[1]))
        indicators = tuple(found)
    row_ids = ids if old is None else np.concatenate([old.row_ids, ids])
    return Segment(key, row_ids, values, validity, indicators)


def _delta(ids: np.ndarray) -> np.ndarray:
    out = np.empty(len(ids), dtype="<i8")
    if len(ids):
        out[0] = ids[0]
        np.subtract(ids[1:], ids[:-1], out=out[1:])
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_manifest(d: Path, fmt: str | None) -> dict[str, Any]:
    try:
        m: dict[str, Any] = json.loads((d / "manifest.json").read_text("utf-8"))
    except FileNotFoundError as exc:
        raise CiphertextInvalid(
            f"{d} holds no encrypted column (no manifest.json); save one there first"
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise CiphertextInvalid(f"{d}/manifest.json cannot be parsed; restore the column") from exc
    if m.get("format") not in ((fmt,) if fmt else (_FORMAT, _PAILLIER_FORMAT)):
        raise CiphertextInvalid(f"{d}/manifest.json is not an encrypted column ({m.get('format')!r})")
    return m


def _read_checked(path: Path, digest: str, name: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CiphertextInvalid(
            f"column {name!r}: {path.name} is missing; restore the column from a backup"
        ) from exc
    if hashlib.sha256(data).hexdigest() != digest:
        raise CiphertextInvalid(
            f"column {name!r}: {path.name} fails its integrity check (altered or truncated); restore the "
            "column from a backup or re-encrypt it"
        )
    return data
