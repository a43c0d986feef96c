"""Apply a profile's operators to detections: free text, structured records and DataFrames.

Detection (the analyzer) and transformation (here) stay apart, as in Presidio: this module never
looks for PII itself, it is handed findings or an ``analyze`` callable. ``mask_text`` is the hot path
(tens of thousands of messages a second): one pass over the findings, one list of slices, one join.

Safe defaults: a record field nobody declared is scanned as free text rather than passed through,
and findings that overlap (the analyzer promises they do not) are merged into one masked span
rather than dropped, so a broken promise costs readability, never a leak.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from appliance.masking.entities import ENTITY_TYPES, Finding
from appliance.masking.errors import MaskingError, UnknownEntityType
from appliance.masking.operators import MaskingKeys, OperatorContext, detokenize
from appliance.masking.operators.token import token_for
from appliance.masking.profiles import Profile, ProfileSet

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FREE_TEXT", "Anonymizer", "MaskedItem", "MaskedText"]

#: Field kind for text to scan with the analyzer (any other kind is an entity type, or None to pass).
FREE_TEXT = "free_text"

Analyze = Callable[[str], Sequence[Finding]]


@dataclass(frozen=True, slots=True)
class MaskedItem:
    """One replaced span: where it was in the original text and where its replacement is in the output."""

    type: str
    start: int
    end: int
    new_start: int
    new_end: int
    operator: str

    def as_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "new_start": self.new_start,
            "new_end": self.new_end,
            "operator": self.operator,
        }


@dataclass(frozen=True, slots=True)
class MaskedText:
    text: str
    items: tuple[MaskedItem, ...]


def _utc_today() -> date:
    return datetime.now(UTC).date()


def _normalise_findings(findings: Sequence[Finding], length: int) -> list[Finding]:
    """Sorted, in range, non-overlapping findings; overlaps merge into one span of the first one's type."""
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if not 0 <= f.start <= f.end <= length:
            raise MaskingError(
                f"finding {f.type} [{f.start}, {f.end}) lies outside the text of {length} characters; "
                "the findings were made on a different text"
            )
        if f.start == f.end:
            continue
        if out and f.start < out[-1].end:
            last = out[-1]
            if f.end > last.end:
                out[-1] = Finding(last.type, last.start, f.end, max(last.score, f.score), last.validator)
            continue
        out.append(f)
    return out


def _check_fields(fields: Mapping[str, str | None]) -> None:
    for name, kind in fields.items():
        if kind is not None and kind != FREE_TEXT and kind not in ENTITY_TYPES:
            raise UnknownEntityType(
                f"field {name!r} is declared as {kind!r}, which is no entity type; use an entity type "
                f"({', '.join(sorted(ENTITY_TYPES))}), {FREE_TEXT!r} to scan it, or None to pass it through"
            )


class Anonymizer:
    """Masks with one tenant's keys; the profile to use is chosen per call (per caller's role/region)."""

    def __init__(
        self, profiles: ProfileSet, keys: MaskingKeys, *, today: Callable[[], date] = _utc_today
    ) -> None:
        self.profiles = profiles
        self._keys = keys
        self._today = today
        self._ctx_day: date | None = None
        self._ctx: OperatorContext | None = None

    def _context(self, subject: str | None) -> OperatorContext:
        today = self._today()
        if subject is None:
            # One shared context per day: the hot path allocates nothing for subject-less messages.
            if self._ctx is None or self._ctx_day != today:
                self._ctx, self._ctx_day = OperatorContext(self._keys, None, today), today
            return self._ctx
        return OperatorContext(self._keys, subject, today)

    # -- free text -------------------------------------------------------------------------------------

    def mask_text(
        self, text: str, findings: Sequence[Finding], profile: Profile, *, subject: str | None = None
    ) -> MaskedText:
        """Replace each finding's span by its operator's output; ``items`` map old spans to new ones."""
        if not findings:
            return MaskedText(text, ())
        ctx = self._context(subject)
        # The analyzer's contract (sorted, non-overlapping, in range) checked in one cheap pass.
        pos = 0
        n = len(text)
        for f in findings:
            if f.start < pos or f.end <= f.start or f.end > n:
                findings = _normalise_findings(findings, n)
                break
            pos = f.end
        operator_for = profile.operator_for
        pieces: list[str] = []
        items: list[MaskedItem] = []
        pos = 0
        out_len = 0
        for f in findings:
            op = operator_for(f.type)
            replacement = op.apply(text[f.start : f.end], f.type, ctx)
            if f.start > pos:
                pieces.append(text[pos : f.start])
                out_len += f.start - pos
            pieces.append(replacement)
            items.append(MaskedItem(f.type, f.start, f.end, out_len, out_len + len(replacement), op.name))
            out_len += len(replacement)
            pos = f.end
        pieces.append(text[pos:])
        return MaskedText("".join(pieces), tuple(items))

    def mask_value(
        self, value: str, entity_type: str, profile: Profile, *, subject: str | None = None
    ) -> str:
        """Mask one whole value known to be ``entity_type`` (a declared record field, a table cell)."""
        return profile.operator_for(entity_type).apply(value, entity_type, self._context(subject))

    # -- structured records ----------------------------------------------------------------------------

    def mask_record(
        self,
        record: Mapping[str, Any],
        fields: Mapping[str, str | None],
        profile: Profile,
        *,
        analyze: Analyze,
        subject: str | None = None,
    ) -> dict[str, Any]:
        """A masked copy of ``record``.

        ``fields`` maps a field to its entity type (the whole value is masked as that type), to
        ``"free_text"`` (scanned with ``analyze``), or to None (passed through unchanged). Fields not in
        ``fields`` are scanned as free text: a new column must not leak because nobody declared it.
        Numbers are masked as their text; nested mappings and lists are walked (their leaves scanned).
        """
        _check_fields(fields)
        return {
            name: self._mask_field(value, fields.get(name, FREE_TEXT), profile, analyze, subject)
            for name, value in record.items()
        }

    def _mask_field(
        self, value: Any, kind: str | None, profile: Profile, analyze: Analyze, subject: str | None
    ) -> Any:
        if kind is None or value is None or isinstance(value, bool):
            return value
        if isinstance(value, Mapping):
            return {k: self._mask_field(v, FREE_TEXT, profile, analyze, subject) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._mask_field(v, kind, profile, analyze, subject) for v in value)
        if isinstance(value, str):
            text = value
        elif isinstance(value, date):
            text = value.isoformat()  # a birth date stored as a date is still a birth date: fail closed
        else:
            text = str(value)  # numbers and anything else are masked as their text, never passed unseen
        if kind == FREE_TEXT:
            findings = analyze(text)
            if not findings:
                return value  # nothing found: keep the original (and its type: 42 stays an int)
            return self.mask_text(text, findings, profile, subject=subject).text
        return self.mask_value(text, kind, profile, subject=subject)

    # -- DataFrames ------------------------------------------------------------------------------------

    def mask_dataframe(
        self,
        df: pd.DataFrame,
        fields: Mapping[str, str | None],
        profile: Profile,
        *,
        analyze: Analyze,
        subject_column: str | None = None,
    ) -> pd.DataFrame:
        """A masked copy of ``df`` (the original is untouched); columns are treated as in ``mask_record``.

        Each column is masked once per distinct value (or per distinct value and subject when the
        profile shifts dates per subject) and mapped back, so low-cardinality columns cost little.
        ``subject_column`` names the column holding each row's pseudonymous subject id.
        """
        _check_fields(fields)
        if subject_column is not None and subject_column not in df.columns:
            raise MaskingError(f"subject_column {subject_column!r} is not a column of the frame")
        out = df.copy()
        subjects = df[subject_column] if subject_column is not None and profile.needs_subject else None
        for column in df.columns:
            kind = fields.get(str(column), FREE_TEXT)
            if kind is None or column == subject_column:
                continue
            out[column] = self._mask_column(df[column], kind, profile, analyze, subjects)
        return out

    def _mask_column(
        self, series: pd.Series, kind: str, profile: Profile, analyze: Analyze, subjects: pd.Series | None
    ) -> pd.Series:
        import pandas as pd

        def restore_dtype(masked: pd.Series) -> pd.Series:
            if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
                return masked.astype(series.dtype)  # a str column stays a str column
            return masked.infer_objects()

        present = series.notna()
        if kind != FREE_TEXT and subjects is None:
            values = series[present]
            if all(isinstance(v, str) for v in values.tolist()):
                # Vectorised: each distinct value masked once (operators may do it in bulk), mapped back.
                uniques = list(pd.unique(values))
                masked_uniques = profile.operator_for(kind).apply_many(uniques, kind, self._context(None))
                out = series.astype(object).copy()
                out[present] = values.map(dict(zip(uniques, masked_uniques, strict=True)))
                return restore_dtype(out)

        cache: dict[Any, Any] = {}

        def mask(value: Any, subject: str | None) -> Any:
            if pd.api.types.is_scalar(value) and pd.isna(value):
                return value
            key = (value, subject)
            try:
                return cache[key]
            except KeyError:
                pass
            except TypeError:  # unhashable cell (list, dict): mask it without caching
                return self._mask_field(value, kind, profile, analyze, subject)
            cache[key] = result = self._mask_field(value, kind, profile, analyze, subject)
            return result

        if subjects is None:
            masked = [mask(v, None) for v in series.tolist()]
        else:
            masked = [
                mask(v, None if s is None or pd.isna(s) else str(s))
                for v, s in zip(series.tolist(), subjects.tolist(), strict=True)
            ]
        return restore_dtype(pd.Series(masked, index=series.index, name=series.name, dtype=object))

    # -- tokens ----------------------------------------------------------------------------------------

    def detokenize(self, token: str, revoked: Callable[[str], bool] | None = None) -> tuple[str, str]:
        """``(entity_type, value)`` of a token; TokenError (opaque) for anything not issued here.

        The caller checks the role (``ProfileSet.may_detokenize``) and records the call in the ledger
        before the value is returned to anyone. ``revoked``: tokens of erased subjects (refused).
        """
        return detokenize(token, self._keys, revoked)

    def token(self, value: str, entity_type: str) -> str:
        """The reversible token of one value (what the ``token`` operator shows), e.g. to revoke it."""
        return token_for(value, entity_type, self._keys)
