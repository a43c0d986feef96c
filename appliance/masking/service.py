"""The masking service the node exposes: detection, the caller's profile and the operators, composed once.

The HTTP layer, the CLI and Python callers all go through :class:`MaskingService`, so an agent's view
is the same whichever door it came in by. It decides nothing about auditing: the node records what the
service returns (counts per type, the profile version) in the ledger before the caller sees the text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers

from appliance.masking.analyzer import Analyzer
from appliance.masking.anonymizer import Anonymizer, MaskedText
from appliance.masking.entities import ENTITY_TYPES, Finding
from appliance.masking.errors import MaskingError, UnknownEntityType
from appliance.masking.operators.base import MaskingKeys
from appliance.masking.profiles import Profile, ProfileSet

__all__ = [
    "DEFAULT_PROFILES",
    "MaskedRecord",
    "MaskingService",
    "NotPermitted",
    "TextMask",
    "UnknownRegion",
    "load_profiles",
]

#: Shipped profiles, used when settings name no file.
DEFAULT_PROFILES = Path(__file__).resolve().parent.parent.parent / "config" / "masking" / "profiles.yaml"


def load_profiles(path: Path | None = None) -> ProfileSet:
    """The shipped profiles, or a file, or every ``*.yaml`` of a directory (a base plus regional files)."""
    path = Path(path) if path is not None else DEFAULT_PROFILES
    return ProfileSet.from_dir(path) if path.is_dir() else ProfileSet.from_file(path)


class UnknownRegion(MaskingError):
    """A request names a region that is neither a country code nor a region the profiles declare."""


class NotPermitted(MaskingError):
    """The caller's role may not do this (de-tokenise, for one); the message names the roles that may."""


@dataclass(frozen=True, slots=True)
class TextMask:
    """A masked text with what was found in the ORIGINAL text and the profile that masked it."""

    text: str
    findings: tuple[Finding, ...]
    role: str
    region: str
    version: str

    def counts(self) -> dict[str, int]:
        return dict(Counter(f.type for f in self.findings))


@dataclass(frozen=True, slots=True)
class MaskedRecord:
    record: dict[str, Any]
    role: str
    region: str
    version: str


class MaskingService:
    """One node's masking: an analyzer, a profile set and one tenant's keys."""

    def __init__(
        self,
        analyzer: Analyzer,
        profiles: ProfileSet,
        keys: MaskingKeys,
        *,
        default_region: str = "default",
        max_text_chars: int = 100_000,
    ) -> None:
        self.analyzer = analyzer
        self.profiles = profiles
        self.anonymizer = Anonymizer(profiles, keys)
        self.default_region = default_region
        self.max_text_chars = max_text_chars
        #: The revocation list of erased subjects' tokens (the node sets it from the store).
        self.token_revoked: Callable[[str], bool] | None = None
        declared = {p.region for p in profiles.profiles}
        groups = profiles.region_groups
        self.regions: frozenset[str] = frozenset(
            {"default", *declared, *groups, *(m for members in groups.values() for m in members)}
            | set(phonenumbers.SUPPORTED_REGIONS)
        )

    @classmethod
    def build(
        cls,
        master_key: bytes,
        *,
        tenant: str = "default",
        profiles: Path | None = None,
        default_region: str = "default",
        max_text_chars: int = 100_000,
    ) -> MaskingService:
        """Load and validate everything up front: a bad profile stops the node at start, not mid-request."""
        return cls(
            Analyzer.default(),
            load_profiles(profiles),
            MaskingKeys.derive(master_key, tenant),
            default_region=default_region,
            max_text_chars=max_text_chars,
        )

    @property
    def version(self) -> str:
        return self.profiles.version

    def profile(self, role: str, region: str | None = None) -> tuple[Profile, str]:
        """The profile for ``role`` in ``region`` (the default region when None), and the region used."""
        if region is None:
            region = self.default_region
        elif region not in self.regions and region.upper() not in self.regions:
            raise UnknownRegion(
                f"unknown region {region!r}: use an ISO 3166 country code (CN, US, DE, ...), a region group "
                f"({', '.join(sorted(self.profiles.region_groups)) or 'none declared'}) or 'default'"
            )
        return self.profiles.resolve(role, region), region

    def check_entities(self, entities: Collection[str] | None) -> frozenset[str] | None:
        if entities is None:
            return None
        unknown = sorted(set(entities) - ENTITY_TYPES)
        if unknown:
            raise UnknownEntityType(
                f"unknown entity type(s) {', '.join(unknown)}; known: {', '.join(sorted(ENTITY_TYPES))}"
            )
        return frozenset(entities)

    def _check_text(self, text: str) -> None:
        if len(text) > self.max_text_chars:
            raise MaskingError(
                f"the text has {len(text)} characters, more than masking.max_text_chars "
                f"({self.max_text_chars}); split it into messages"
            )

    def analyze(self, text: str, entities: Collection[str] | None = None) -> list[Finding]:
        self._check_text(text)
        return self.analyzer.analyze(text, entities=self.check_entities(entities))

    def mask_text(
        self,
        text: str,
        *,
        role: str,
        region: str | None = None,
        entities: Collection[str] | None = None,
        subject: str | None = None,
    ) -> TextMask:
        """Detect and mask ``text`` as ``role`` may see it; ``entities`` narrows detection to those types."""
        profile, region = self.profile(role, region)
        wanted = self.check_entities(entities)
        self._check_text(text)
        findings = self.analyzer.analyze(text, entities=wanted)
        masked: MaskedText = self.anonymizer.mask_text(text, findings, profile, subject=subject)
        return TextMask(masked.text, tuple(findings), role, region, self.version)

    def mask_record(
        self,
        record: Mapping[str, Any],
        fields: Mapping[str, str | None],
        *,
        role: str,
        region: str | None = None,
        subject: str | None = None,
    ) -> MaskedRecord:
        """Mask one structured record: declared fields by their type, free text scanned, the rest passed."""
        profile, region = self.profile(role, region)
        for value in record.values():
            if isinstance(value, str):
                self._check_text(value)
        out = self.anonymizer.mask_record(
            record, fields, profile, analyze=self.analyzer.analyze, subject=subject
        )
        return MaskedRecord(out, role, region, self.version)

    def mask_records(
        self,
        records: Sequence[Mapping[str, Any]],
        fields: Mapping[str, str | None],
        *,
        role: str,
        region: str | None = None,
    ) -> list[MaskedRecord]:
        return [self.mask_record(r, fields, role=role, region=region) for r in records]

    def detokenize(self, token: str, *, role: str) -> tuple[str, str]:
        """Reverse a token, for the roles the profile set allows; the caller records the call first."""
        allowed = self.profiles.detokenize_roles
        if role not in allowed:
            raise NotPermitted(f"role {role!r} may not de-tokenise; allowed: {', '.join(sorted(allowed))}")
        return self.anonymizer.detokenize(token, self.token_revoked)

    def token(self, value: str, entity_type: str) -> str:
        """The reversible token ``value`` gets as ``entity_type`` (erasure revokes a subject's tokens)."""
        return self.anonymizer.token(value, entity_type)
