"""The custodian's key ring: CKKS, BFV and Paillier keys under one key id, public and secret parts apart.

The query engine runs with the PUBLIC material only (public keys, relinearisation and Galois keys), so a
compromise of the engine's process discloses no customer value; the secret keys stay with the custodian,
sealed with a passphrase (scrypt + AES-256-GCM) or, without one, in 0600 files that are refused once their
mode is loosened. Rotation adds a key id and makes it current; old ones stay, because results and columns
made under them must still be decrypted.

The schemes run on Microsoft SEAL through ``tenseal.sealapi`` (the SEAL bindings TenSEAL ships) rather
than TenSEAL's vector classes: the engine has to add ciphertexts *before* a single rotation-sum, multiply
without relinearising every partial product, and keep one SEAL context for every ciphertext, and only the
SEAL API exposes those steps. SEAL serialises to file paths only, so objects travel through an anonymous
in-memory file (``memfd``): a secret key never touches a disk on its way to being sealed.

Layout of a key ring directory::

    CURRENT                      the current key id
    <key id>/public.json         parameters, file digests, creation time (the key id is derived from these)
    <key id>/ckks.public_key     ckks.relin_keys  ckks.galois_keys   (SEAL files, public)
    <key id>/bfv.public_key      bfv.relin_keys   bfv.galois_keys
    <key id>/paillier.json       the Paillier public key, for partners that add to our values
    <key id>/secret.sealed       passphrase-sealed secret keys (0600)  -- or --
    <key id>/secret.json         secret keys in the clear, mode 0600 (no passphrase)
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tenseal.sealapi as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from phe import paillier

from appliance.privacy.errors import CiphertextInvalid, KeyUnavailable

__all__ = [
    "PRODUCTION_PARAMETERS",
    "BFVParameters",
    "CKKSParameters",
    "HEContext",
    "HEParameters",
    "KeyRing",
    "PublicContexts",
    "Scheme",
    "SecretContexts",
]

Scheme = Literal["ckks", "bfv"]


@dataclass(frozen=True)
class CKKSParameters:
    """CKKS for real-valued sums, dot products and sums of squares.

    Why these numbers (N = 8192, coefficient moduli 46 | 47 | 47 | 60 bits, value scale 2^41 / bound):

    - 128-bit security: the HE standard allows at most 218 bits of coefficient modulus at N = 8192; we
      use 200 (SEAL checks it when the context is built, with ``SEC_LEVEL_TYPE.TC128``).
    - Size: a fresh ciphertext carries the three data primes (140 bits); SEAL's zstd output is ~334 KB
      per 4096 values, i.e. ~82 MB per million values, under the 85 MB budget. A fourth data prime (a
      third multiplication) would cost ~20 MB more per million values, so there is none.
    - The data primes are 46-47 bits, not the usual 60 | 40 | 40: the engine never rescales, so only
      their product matters, and the noise a rotation adds grows with the largest data prime over the
      60-bit special prime. With 47-bit primes a rotation-sum adds less noise than the encryption had
      (measured: ~6e4 in integer units for a whole rotation-sum, against ~8e5 with a 60-bit prime).
    - Speed: N = 8192 gives 4096 slots per ciphertext; a rotation-sum is 12 rotations (~30 ms), and a
      million values are 245 ciphertexts that add in ~15 ms. N = 16384 would halve the ciphertext count
      but double every rotation and need the same bytes per value.
    - Headroom instead of rescaling: the engine never rescales (a rescale divides the modulus by as much
      as the scale, so it buys no room); the product of the factors' scales times |result| must stay
      below the 140-bit modulus. Each column is therefore encoded so that its declared bound maps to 2^41
      (``value_bits``: scale = 2^41 / bound, the bound rounded up to a power of two), and 0/1 flags,
      validity masks and histogram indicators at 2^36 (``flag_bits``). On a million rows (2^20) that
      fits, in the worst case of every value at its bound: a sum (41+20 bits), a sum of squares (82+20),
      a flag-filtered sum (77+20), a flag-filtered sum of squares (118+20 = 138 of 140) and a
      flag-filtered DOT (41+40+36+20); the engine refuses (``ResultUnsafe``) what the declared bounds
      say would not fit, and a fourth ciphertext factor (``max_depth`` 2) in any case.
    - Precision: a fresh ciphertext carries ~1,400 (rms) of noise per slot in integer units, and every
      slot of every ciphertext summed (used or not) adds its share, so a result is off by about
      9e4 * sqrt(ciphertexts summed) integer units (rms): ~4e-8 x bound for a sum within one ciphertext
      (~7e-7 x bound over a million rows), and a flag multiplies each row by 1 +- 2e-8. That is ~1e-9
      relative on the test data, far below the 1e-6 the queries promise, as long as |result| is not far
      below the bound (declare the bound from the schema, not from a worst outlier). The flag scale is
      the one that matters most: at 2^33 a flag-filtered sum of zero-mean data was off by up to 6e-7 x
      bound; at 2^36 it stays within the encryption noise.
    - Plaintext weights and score coefficients are encoded so their largest magnitude is ~2^40
      (``scale_bits``).
    """

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (46, 47, 47, 60)
    scale_bits: int = 40
    value_bits: int = 41
    flag_bits: int = 36
    max_depth: int = 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "scale_bits": self.scale_bits,
            "value_bits": self.value_bits,
            "flag_bits": self.flag_bits,
            "max_depth": self.max_depth,
        }


@dataclass(frozen=True)
class BFVParameters:
    """BFV for exact integer counts and sums.

    N = 8192 with SEAL's 128-bit default modulus for it (43+43+44+44 data bits, a 44-bit special prime:
    218 bits, the standard's maximum) and a 40-bit batching prime t = 1,099,511,480,321 as plaintext
    modulus. Every result must stay within (t - 1) / 2 = 549,755,740,160 in absolute value: a count of up
    to 5.4e11 rows, a sum of a million values of |x| <= 549,755, a sum of squares of a million values of
    |x| <= 741 (the engine checks the declared bounds and refuses, ``ResultUnsafe``, beyond that). The
    noise budget allows depth 2 (x * x * flag): measured on a million rows, 9 bits remain after the
    products, the additions and the rotation-sum. 8192 slots per ciphertext, ~53 MB per million values.
    """

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (43, 43, 44, 44, 44)
    plain_modulus_bits: int = 40
    max_depth: int = 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "plain_modulus_bits": self.plain_modulus_bits,
            "max_depth": self.max_depth,
        }


@dataclass(frozen=True)
class HEParameters:
    """Everything ``KeyRing.generate`` needs; tests may shrink the Paillier modulus, production must not.

    Paillier: a 3072-bit modulus is the 128-bit level (NIST SP 800-57); 2048 bits would be ~112.
    """

    ckks: CKKSParameters = field(default_factory=CKKSParameters)
    bfv: BFVParameters = field(default_factory=BFVParameters)
    paillier_bits: int = 3072

    def as_dict(self) -> dict[str, Any]:
        return {"ckks": self.ckks.as_dict(), "bfv": self.bfv.as_dict(), "paillier_bits": self.paillier_bits}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HEParameters:
        c, b = data["ckks"], data["bfv"]
        return cls(
            CKKSParameters(
                c["poly_modulus_degree"],
                tuple(c["coeff_mod_bit_sizes"]),
                c["scale_bits"],
                c["value_bits"],
                c["flag_bits"],
                c["max_depth"],
            ),
            BFVParameters(
                b["poly_modulus_degree"],
                tuple(b["coeff_mod_bit_sizes"]),
                b["plain_modulus_bits"],
                b["max_depth"],
            ),
            int(data["paillier_bits"]),
        )


PRODUCTION_PARAMETERS = HEParameters()

# A column's scale never drops below 2^20 (~1e-3 absolute error per value): a bound above 2^21 keeps
# that scale and costs headroom instead, so the engine refuses what would not fit rather than answering
# imprecisely.
_MIN_SCALE_BITS = 20
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}  # ~0.1 s and 32 MiB per attempt: slows guessing, not the custodian
_PUBLIC_FILES = (
    "ckks.public_key",
    "ckks.relin_keys",
    "ckks.galois_keys",
    "bfv.public_key",
    "bfv.relin_keys",
    "bfv.galois_keys",
    "paillier.json",
)
_OPAQUE = "the secret keys of key id {key_id} cannot be opened: wrong passphrase or altered key file"


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- SEAL objects to and from bytes -----------------------------------------------------------------


class _Scratch:
    """One anonymous in-memory file that SEAL saves to and loads from (it only knows file paths).

    ``memfd_create`` keeps the bytes in RAM: nothing, not even a secret key on its way to the sealing
    step, is written to a disk. Where memfd is missing (not Linux) a private temporary directory serves.
    """

    def __init__(self) -> None:
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        try:
            self._fd = os.memfd_create("appliance-seal", os.MFD_CLOEXEC)
            self.path = f"/proc/self/fd/{self._fd}"
            if not os.path.exists(self.path):  # memfd without /proc: fall back
                os.close(self._fd)
                raise OSError("no /proc")
        except (AttributeError, OSError):
            self._tmpdir = tempfile.TemporaryDirectory(prefix="appliance-seal-")
            self.path = os.path.join(self._tmpdir.name, "object")
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def save(self, obj: Any) -> bytes:
        os.ftruncate(self._fd, 0)
        obj.save(self.path)
        size = os.fstat(self._fd).st_size
        return os.pread(self._fd, size, 0)

    def load(self, obj: Any, context: Any, data: bytes) -> Any:
        os.ftruncate(self._fd, 0)
        view = memoryview(data)
        offset = 0
        while offset < len(view):
            offset += os.pwrite(self._fd, view[offset:], offset)
        obj.load(context, self.path)
        return obj

    def close(self) -> None:
        os.close(self._fd)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()


@contextmanager
def _scratch() -> Iterator[_Scratch]:
    s = _Scratch()
    try:
        yield s
    finally:
        s.close()


# --- one scheme's context ---------------------------------------------------------------------------


def _seal_context(scheme: Scheme, degree: int, moduli: Sequence[int], plain_modulus: int | None) -> Any:
    parms = sa.EncryptionParameters(sa.SCHEME_TYPE.CKKS if scheme == "ckks" else sa.SCHEME_TYPE.BFV)
    parms.set_poly_modulus_degree(degree)
    parms.set_coeff_modulus([sa.Modulus(m) for m in moduli])
    if plain_modulus is not None:
        parms.set_plain_modulus(plain_modulus)
    ctx = sa.SEALContext(parms, True, sa.SEC_LEVEL_TYPE.TC128)
    if not ctx.parameters_set():
        raise KeyUnavailable(
            f"{scheme} parameters N={degree}, moduli of {[m.bit_length() for m in moduli]} bits are not "
            f"valid at 128-bit security ({ctx.parameters_error_message()}); choose parameters within "
            "the HE standard's bounds"
        )
    return ctx


def _galois_elements(scheme: Scheme, ctx: Any, degree: int) -> list[int]:
    """Only the rotations a rotation-sum needs: powers of two (and, for BFV, the row swap)."""
    slots = degree // 2
    steps = [1 << k for k in range(int(math.log2(slots)))]
    elts: list[int] = list(ctx.key_context_data().galois_tool().get_elts_from_steps(steps))
    if scheme == "bfv":
        elts.append(2 * degree - 1)
    return elts


@dataclass(frozen=True, eq=False)
class HEContext:
    """One scheme's SEAL context and keys under one key id; public unless ``secret_key`` is set.

    Every ciphertext of a column or a result refers to this one context object (SEAL ciphertexts carry
    only a parameter id), so loading a million values makes no per-ciphertext context copies.
    """

    scheme: Scheme
    key_id: str
    params: Mapping[str, Any]  # the scheme's entry of public.json: sizes, moduli, scale / plain modulus
    seal: Any = field(repr=False)
    public_key: Any = field(repr=False)
    relin_keys: Any = field(repr=False)
    galois_keys: Any = field(repr=False)
    secret_key: Any = field(default=None, repr=False)
    encoder: Any = field(init=False, repr=False)
    encryptor: Any = field(init=False, repr=False)
    evaluator: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        encoder = sa.CKKSEncoder(self.seal) if self.scheme == "ckks" else sa.BatchEncoder(self.seal)
        object.__setattr__(self, "encoder", encoder)
        object.__setattr__(self, "encryptor", sa.Encryptor(self.seal, self.public_key))
        object.__setattr__(self, "evaluator", sa.Evaluator(self.seal))

    # what the engine and the custodian ask of a context
    def is_private(self) -> bool:
        """True when this context can decrypt (the custodian's); the engine must only ever see False."""
        return self.secret_key is not None

    def has_secret_key(self) -> bool:
        return self.secret_key is not None

    def public(self) -> HEContext:
        """The same context without its secret key (what the engine may hold)."""
        return HEContext(
            self.scheme,
            self.key_id,
            self.params,
            self.seal,
            self.public_key,
            self.relin_keys,
            self.galois_keys,
        )

    @property
    def slot_count(self) -> int:
        return int(self.encoder.slot_count())

    @property
    def scale_bits(self) -> int:
        return int(self.params["scale_bits"]) if self.scheme == "ckks" else 0

    @property
    def scale(self) -> float:
        return float(2**self.scale_bits)

    @property
    def plain_modulus(self) -> int:
        return int(self.params["plain_modulus"]) if self.scheme == "bfv" else 0

    @property
    def max_plain(self) -> int:
        """BFV: the largest |result| the plaintext modulus represents, (t - 1) / 2."""
        return (self.plain_modulus - 1) // 2

    @property
    def data_bits(self) -> float:
        """CKKS: log2 of the modulus a fresh ciphertext lives under (the special prime excluded)."""
        return sum(math.log2(m) for m in self.params["coeff_modulus"][:-1])

    @property
    def max_depth(self) -> int:
        """Ciphertext-by-ciphertext multiplications a summand may have (a product of max_depth + 1)."""
        return int(self.params["max_depth"])

    def column_scale_bits(self, kind: str, bound: float) -> int:
        """CKKS: the scale a column is encoded at, log2 (see ``CKKSParameters``); 0 for BFV."""
        if self.scheme != "ckks":
            return 0
        if kind == "flag":
            return int(self.params["flag_bits"])
        return int(
            min(60, max(_MIN_SCALE_BITS, int(self.params["value_bits"]) - math.ceil(math.log2(bound))))
        )

    @property
    def flag_bits(self) -> int:
        return int(self.params["flag_bits"]) if self.scheme == "ckks" else 0

    def encode(self, values: np.ndarray, scale: float | None = None) -> Any:
        """A plaintext of ``values`` (at most ``slot_count``; the rest of the slots are zero)."""
        pt = sa.Plaintext()
        if self.scheme == "ckks":
            self.encoder.encode(
                np.asarray(values, dtype=np.float64).tolist(),
                self.seal.first_parms_id(),
                self.scale if scale is None else scale,
                pt,
            )
        else:
            self.encoder.encode(np.asarray(values, dtype=np.int64).tolist(), pt)
        return pt

    def encode_scalar(self, value: float, scale: float | None = None) -> Any:
        """A plaintext holding ``value`` in every slot (CKKS: a constant polynomial, cheap to make)."""
        if self.scheme == "ckks":
            pt = sa.Plaintext()
            self.encoder.encode(
                float(value), self.seal.first_parms_id(), self.scale if scale is None else scale, pt
            )
            return pt
        return self.encode(np.full(self.slot_count, int(value), dtype=np.int64))

    def encrypt(self, values: np.ndarray, scale: float | None = None) -> Any:
        ct = sa.Ciphertext()
        self.encryptor.encrypt(self.encode(values, scale), ct)
        return ct

    def decrypt(self, ciphertext: Any) -> np.ndarray:
        """Every slot of ``ciphertext`` (floats for CKKS, int64 for BFV); the custodian's only."""
        if self.secret_key is None:
            raise KeyUnavailable(
                f"key id {self.key_id}: this {self.scheme} context is public and cannot decrypt; "
                "the custodian decrypts with KeyRing.secret()"
            )
        pt = sa.Plaintext()
        sa.Decryptor(self.seal, self.secret_key).decrypt(ciphertext, pt)
        if self.scheme == "ckks":
            return np.asarray(self.encoder.decode_double(pt), dtype=np.float64)
        return np.asarray(self.encoder.decode_int64(pt), dtype=np.int64)

    def to_bytes(self, objects: Sequence[Any]) -> list[bytes]:
        """SEAL's own serialisation (zstd-compressed) of ciphertexts or keys."""
        with _scratch() as s:
            return [s.save(o) for o in objects]

    def ciphertexts_from_bytes(self, blobs: Sequence[bytes]) -> list[Any]:
        """Parse ciphertexts made under this context; anything else -> ``CiphertextInvalid``."""
        out = []
        with _scratch() as s:
            for blob in blobs:
                try:
                    ct = s.load(sa.Ciphertext(), self.seal, blob)
                except (RuntimeError, ValueError) as exc:
                    raise CiphertextInvalid(
                        f"a {self.scheme} ciphertext fails its integrity check or is not one of key id "
                        f"{self.key_id}; recompute or restore it"
                    ) from exc
                if ct.parms_id() != self.seal.first_parms_id() or ct.size() != 2:
                    raise CiphertextInvalid(
                        f"a {self.scheme} ciphertext is not at the parameters of key id {self.key_id}; "
                        "recompute or restore it"
                    )
                out.append(ct)
        return out


def _pick(ckks: HEContext, bfv: HEContext, name: str) -> HEContext:
    if name == "ckks":
        return ckks
    if name == "bfv":
        return bfv
    raise ValueError(f"unknown scheme {name!r}; use 'ckks' or 'bfv'")


@dataclass(frozen=True, eq=False)
class PublicContexts:
    """What the query engine and the encrypting node hold: no secret key in any of the three schemes."""

    key_id: str
    ckks: HEContext
    bfv: HEContext
    paillier: paillier.PaillierPublicKey
    info: Mapping[str, Any] = field(repr=False)

    def scheme(self, name: str) -> HEContext:
        return _pick(self.ckks, self.bfv, name)

    def is_private(self) -> bool:
        return False


@dataclass(frozen=True, eq=False)
class SecretContexts:
    """The custodian's keys for one key id; ``public()`` is what may be handed to the engine."""

    key_id: str
    ckks: HEContext
    bfv: HEContext
    paillier_public: paillier.PaillierPublicKey
    paillier_private: paillier.PaillierPrivateKey = field(repr=False)
    info: Mapping[str, Any] = field(repr=False)

    def public(self) -> PublicContexts:
        return PublicContexts(
            self.key_id, self.ckks.public(), self.bfv.public(), self.paillier_public, self.info
        )

    def scheme(self, name: str) -> HEContext:
        return _pick(self.ckks, self.bfv, name)

    def is_private(self) -> bool:
        return True


# --- the key ring -----------------------------------------------------------------------------------


def _new_scheme(
    scheme: Scheme, p: CKKSParameters | BFVParameters
) -> tuple[dict[str, Any], dict[str, bytes], bytes]:
    """Fresh keys of one scheme: (parameters for public.json, public files, secret key bytes)."""
    degree = p.poly_modulus_degree
    moduli = [m.value() for m in sa.CoeffModulus.Create(degree, list(p.coeff_mod_bit_sizes))]
    params: dict[str, Any] = {"scheme": scheme, **p.as_dict(), "coeff_modulus": moduli}
    plain: int | None = None
    if isinstance(p, BFVParameters):
        plain = int(sa.PlainModulus.Batching(degree, p.plain_modulus_bits).value())
        params["plain_modulus"] = plain
    ctx = _seal_context(scheme, degree, moduli, plain)
    kg = sa.KeyGenerator(ctx)
    pk, rk, gk = sa.PublicKey(), sa.RelinKeys(), sa.GaloisKeys()
    kg.create_public_key(pk)
    kg.create_relin_keys(rk)
    kg.create_galois_keys(_galois_elements(scheme, ctx, degree), gk)
    with _scratch() as s:
        files = {
            f"{scheme}.public_key": s.save(pk),
            f"{scheme}.relin_keys": s.save(rk),
            f"{scheme}.galois_keys": s.save(gk),
        }
        secret = s.save(kg.secret_key())
    return params, files, secret


def _key_id(params: Mapping[str, Any], files: Mapping[str, bytes]) -> str:
    h = hashlib.sha256(b"appliance-he-public/1\x00" + _canonical(params))
    for name in _PUBLIC_FILES:
        h.update(name.encode() + b"\x00" + len(files[name]).to_bytes(8, "big") + files[name])
    return h.hexdigest()[:16]


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _seal_secret(payload: bytes, passphrase: bytes, aad: bytes) -> bytes:
    salt = secrets.token_bytes(16)
    key = Scrypt(salt=salt, length=32, **_SCRYPT).derive(passphrase)
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, payload, aad)
    return _canonical(
        {
            "format": "appliance-he-secret-sealed/1",
            "kdf": {"name": "scrypt", "salt": base64.b64encode(salt).decode(), **_SCRYPT},
            "aead": "AES-256-GCM",
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(sealed).decode(),
        }
    )


def _open_sealed(blob: bytes, passphrase: bytes, aad: bytes, key_id: str) -> bytes:
    try:
        doc = json.loads(blob)
        kdf = doc["kdf"]
        if doc["format"] != "appliance-he-secret-sealed/1" or kdf["name"] != "scrypt":
            raise ValueError("format")
        key = Scrypt(
            salt=base64.b64decode(kdf["salt"]), length=32, n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"])
        ).derive(passphrase)
        return AESGCM(key).decrypt(base64.b64decode(doc["nonce"]), base64.b64decode(doc["ciphertext"]), aad)
    except (InvalidTag, ValueError, KeyError, TypeError) as exc:
        raise KeyUnavailable(_OPAQUE.format(key_id=key_id)) from exc


@dataclass(frozen=True)
class KeyRing:
    """A directory of key ids (see the module docstring); a copy with the public files only is what the
    engine's machine gets (``export_public``)."""

    directory: Path

    @classmethod
    def generate(
        cls, directory: str | Path, passphrase: bytes | None, params: HEParameters = PRODUCTION_PARAMETERS
    ) -> KeyRing:
        """A new ring with one key id, made current. ``passphrase`` None: secret keys in 0600 files."""
        d = Path(directory)
        if (d / "CURRENT").exists():
            raise KeyUnavailable(f"{d} already holds a key ring; open it with KeyRing.open() and rotate()")
        d.mkdir(parents=True, exist_ok=True)
        ring = cls(d)
        ring._add(passphrase, params)
        return ring

    @classmethod
    def open(cls, directory: str | Path) -> KeyRing:
        d = Path(directory)
        if not (d / "CURRENT").is_file():
            raise KeyUnavailable(
                f"{d} holds no key ring (no CURRENT file); create one with KeyRing.generate()"
            )
        return cls(d)

    @property
    def current_key_id(self) -> str:
        return (self.directory / "CURRENT").read_text("ascii").strip()

    def key_ids(self) -> tuple[str, ...]:
        """Every key id in the ring, oldest first."""
        found = []
        for p in self.directory.iterdir():
            if (p / "public.json").is_file():
                found.append((json.loads((p / "public.json").read_text("utf-8"))["created"], p.name))
        return tuple(name for _, name in sorted(found))

    def info(self, key_id: str | None = None) -> dict[str, Any]:
        """The public description of a key id (parameters, creation time, file digests)."""
        kid = key_id or self.current_key_id
        path = self.directory / kid / "public.json"
        if not path.is_file():
            raise KeyUnavailable(
                f"key id {kid} is not in the key ring {self.directory}; known: {self.key_ids()}"
            )
        data: dict[str, Any] = json.loads(path.read_text("utf-8"))
        return data

    def rotate(self, passphrase: bytes | None, params: HEParameters | None = None) -> str:
        """A new key id, made current; the old ones stay for what was encrypted under them."""
        if params is None:
            params = HEParameters.from_dict(self.info()["parameters"])
        return self._add(passphrase, params)

    def public(self, key_id: str | None = None) -> PublicContexts:
        """The public contexts of ``key_id`` (default: current), checked against their digests."""
        info = self.info(key_id)
        kid = info["key_id"]
        files = self._public_files(kid, info)
        ckks = _load_context("ckks", kid, info["ckks"], files)
        bfv = _load_context("bfv", kid, info["bfv"], files)
        pub = json.loads(files["paillier.json"])
        if ckks.is_private() or bfv.is_private():  # by construction never; the engine relies on it
            raise KeyUnavailable(f"key id {kid}: public contexts with a secret key; restore the key ring")
        return PublicContexts(kid, ckks, bfv, paillier.PaillierPublicKey(int(pub["n"])), info)

    def secret(self, key_id: str | None = None, passphrase: bytes | None = None) -> SecretContexts:
        """The custodian's contexts; a wrong passphrase or an altered file: one opaque ``KeyUnavailable``."""
        info = self.info(key_id)
        kid = info["key_id"]
        kdir = self.directory / kid
        sealed, plain = kdir / "secret.sealed", kdir / "secret.json"
        path = sealed if sealed.exists() else plain
        if not path.exists():
            raise KeyUnavailable(
                f"key id {kid}: no secret keys here ({kdir} is a public-only copy); decrypt where the "
                "custodian's key ring is"
            )
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyUnavailable(f"{path} is readable by others (mode {mode:o}); run chmod 600 {path}")
        blob = path.read_bytes()
        if path == sealed:
            if passphrase is None:
                raise KeyUnavailable(
                    f"key id {kid}: the secret keys are sealed; pass the custodian's passphrase"
                )
            blob = _open_sealed(blob, passphrase, _aad(info), kid)
        try:
            doc = json.loads(blob)
            if doc["key_id"] != kid:
                raise ValueError("key id")
            p, q = int(doc["paillier"]["p"]), int(doc["paillier"]["q"])
            ckks_sk, bfv_sk = base64.b64decode(doc["ckks"]), base64.b64decode(doc["bfv"])
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyUnavailable(_OPAQUE.format(key_id=kid)) from exc
        public = self.public(kid)
        pk = public.paillier
        if p * q != pk.n:
            raise KeyUnavailable(_OPAQUE.format(key_id=kid))
        ckks = _with_secret(public.ckks, ckks_sk)
        bfv = _with_secret(public.bfv, bfv_sk)
        return SecretContexts(kid, ckks, bfv, pk, paillier.PaillierPrivateKey(pk, p, q), info)

    def export_public(self, destination: str | Path) -> KeyRing:
        """A copy of the ring without any secret file: what the query engine's machine gets."""
        dest = Path(destination)
        dest.mkdir(parents=True, exist_ok=True)
        for kid in self.key_ids():
            (dest / kid).mkdir(exist_ok=True)
            for name in (*_PUBLIC_FILES, "public.json"):
                shutil.copyfile(self.directory / kid / name, dest / kid / name)
        shutil.copyfile(self.directory / "CURRENT", dest / "CURRENT")
        return KeyRing(dest)

    # internals
    def _add(self, passphrase: bytes | None, params: HEParameters) -> str:
        if passphrase is not None and not isinstance(passphrase, bytes):
            raise TypeError("passphrase must be bytes (or None for 0600 files)")
        ckks_params, files, ckks_secret = _new_scheme("ckks", params.ckks)
        bfv_params, bfv_files, bfv_secret = _new_scheme("bfv", params.bfv)
        files.update(bfv_files)
        pk, sk = paillier.generate_paillier_keypair(n_length=params.paillier_bits)
        files["paillier.json"] = _canonical(
            {"scheme": "paillier", "n": str(pk.n), "bits": params.paillier_bits}
        )
        described = {"parameters": params.as_dict(), "ckks": ckks_params, "bfv": bfv_params}
        kid = _key_id(described, files)
        info = {
            "format": "appliance-he-keys/1",
            "key_id": kid,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            **described,
            "files": {name: hashlib.sha256(files[name]).hexdigest() for name in _PUBLIC_FILES},
        }
        payload = _canonical(
            {
                "key_id": kid,
                "ckks": base64.b64encode(ckks_secret).decode(),
                "bfv": base64.b64encode(bfv_secret).decode(),
                "paillier": {"p": str(sk.p), "q": str(sk.q)},
            }
        )
        tmp = Path(tempfile.mkdtemp(prefix=".new-", dir=self.directory))
        os.chmod(tmp, 0o755)
        for name, data in files.items():
            _write(tmp / name, data, 0o644)
        _write(tmp / "public.json", json.dumps(info, indent=1, sort_keys=True).encode(), 0o644)
        if passphrase is None:
            _write(tmp / "secret.json", payload, 0o600)
        else:
            _write(tmp / "secret.sealed", _seal_secret(payload, passphrase, _aad(info)), 0o600)
        os.rename(tmp, self.directory / kid)
        current = self.directory / f".CURRENT.{secrets.token_hex(4)}"
        _write(current, kid.encode("ascii") + b"\n", 0o644)
        os.replace(current, self.directory / "CURRENT")
        return kid

    def _public_files(self, kid: str, info: Mapping[str, Any]) -> dict[str, bytes]:
        files = {}
        for name in _PUBLIC_FILES:
            path = self.directory / kid / name
            try:
                data = path.read_bytes()
            except FileNotFoundError as exc:
                raise CiphertextInvalid(f"key id {kid}: {path} is missing; restore the key ring") from exc
            if hashlib.sha256(data).hexdigest() != info["files"][name]:
                raise CiphertextInvalid(
                    f"key id {kid}: {path} fails its integrity check; restore the key ring"
                )
            files[name] = data
        described = {k: info[k] for k in ("parameters", "ckks", "bfv")}
        if _key_id(described, files) != kid:
            raise CiphertextInvalid(
                f"key id {kid}: public.json does not match the key files; restore the key ring"
            )
        return files


def _aad(info: Mapping[str, Any]) -> bytes:
    """What the sealed secret is bound to: its key id and parameters (a swapped file fails to open)."""
    return _canonical(
        {"key_id": info["key_id"], "parameters": info["parameters"], "ckks": info["ckks"], "bfv": info["bfv"]}
    )


def _load_context(
    scheme: Scheme, kid: str, params: Mapping[str, Any], files: Mapping[str, bytes]
) -> HEContext:
    ctx = _seal_context(
        scheme, params["poly_modulus_degree"], params["coeff_modulus"], params.get("plain_modulus")
    )
    pk, rk, gk = sa.PublicKey(), sa.RelinKeys(), sa.GaloisKeys()
    try:
        with _scratch() as s:
            s.load(pk, ctx, files[f"{scheme}.public_key"])
            s.load(rk, ctx, files[f"{scheme}.relin_keys"])
            s.load(gk, ctx, files[f"{scheme}.galois_keys"])
    except (RuntimeError, ValueError) as exc:
        raise CiphertextInvalid(
            f"key id {kid}: the {scheme} public keys cannot be parsed; restore the key ring"
        ) from exc
    return HEContext(scheme, kid, dict(params), ctx, pk, rk, gk)


def _with_secret(public: HEContext, secret: bytes) -> HEContext:
    sk = sa.SecretKey()
    try:
        with _scratch() as s:
            s.load(sk, public.seal, secret)
    except (RuntimeError, ValueError) as exc:
        raise KeyUnavailable(_OPAQUE.format(key_id=public.key_id)) from exc
    ctx = HEContext(
        public.scheme,
        public.key_id,
        public.params,
        public.seal,
        public.public_key,
        public.relin_keys,
        public.galois_keys,
        sk,
    )
    # The secret key must be the one the public key was made from: a known value round-trips.
    probe = np.arange(1, 9, dtype=np.float64)
    got = ctx.decrypt(ctx.encrypt(probe))[:8]
    if not np.allclose(got, probe, atol=1e-3):
        raise KeyUnavailable(_OPAQUE.format(key_id=public.key_id))
    return ctx
