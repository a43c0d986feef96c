"""Masking engine: PII recognizers and validators, masking operators, role/region masking profiles.

Detection (:class:`Analyzer`) and transformation (:class:`Anonymizer` with the operators a
:class:`ProfileSet` configures) are kept apart, as Presidio does; :class:`MaskingService` composes
them for the node, which records every masking in the ledger.
"""

from appliance.masking.analyzer import Analyzer
from appliance.masking.anonymizer import FREE_TEXT, Anonymizer, MaskedItem, MaskedText
from appliance.masking.entities import ENTITY_TYPES, EntityType, Finding
from appliance.masking.errors import (
    MaskingError,
    ProfileError,
    TokenError,
    UnknownEntityType,
    UnknownProfile,
)
from appliance.masking.operators.base import MaskingKeys
from appliance.masking.profiles import Profile, ProfileSet
from appliance.masking.service import MaskedRecord, MaskingService, NotPermitted, TextMask

__all__ = [
    "ENTITY_TYPES",
    "FREE_TEXT",
    "Analyzer",
    "Anonymizer",
    "EntityType",
    "Finding",
    "MaskedItem",
    "MaskedRecord",
    "MaskedText",
    "MaskingError",
    "MaskingKeys",
    "MaskingService",
    "NotPermitted",
    "Profile",
    "ProfileError",
    "ProfileSet",
    "TextMask",
    "TokenError",
    "UnknownEntityType",
    "UnknownProfile",
]
