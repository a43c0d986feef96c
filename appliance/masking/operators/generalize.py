"""Generalisation: a birth date becomes its year ("1990") or an age band ("30-39").

Enough for suitability rules, age-based routing and statistics; not enough to identify a person
(date of birth plus postcode identifies most people; the year or band does not). Ages are counted
to ``ctx.today`` so bands move with time. A value that is not a recognisable date (or year) becomes
the type tag: generalising must never fall back to showing the value.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from appliance.masking.operators._dates import parse_date, parse_year
from appliance.masking.operators.base import Operator, OperatorContext, OperatorParams

__all__ = ["GeneralizeOperator", "age_on"]


def age_on(born: date, today: date) -> int:
    """Completed years from ``born`` to ``today``."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


class GeneralizeParams(OperatorParams):
    mode: Literal["year", "age_band"] = "year"
    band_width: int = Field(default=10, ge=1, le=50)
    top: int = Field(default=90, ge=1, le=150)  # ages from here on are one band: "90+"
    day_first: bool = True  # how to read nn/nn/yyyy when both parts are 12 or less

    @model_validator(mode="after")
    def _top_on_band(self) -> GeneralizeParams:
        if self.top % self.band_width:
            raise ValueError(f"top ({self.top}) must be a multiple of band_width ({self.band_width})")
        return self


class GeneralizeOperator(Operator[GeneralizeParams]):
    name = "generalize"
    Params = GeneralizeParams

    def apply(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        p = self.params
        parsed = parse_date(value, day_first=p.day_first)
        if parsed is not None:
            born = parsed.value
        else:
            year = parse_year(value)
            if year is None:
                return f"<{entity_type}>"
            born = date(year, 7, 1)  # mid-year: the band is right for half the year either side
        if p.mode == "year":
            return str(born.year)
        return self.band(age_on(born, ctx.today))

    def band(self, age: int) -> str:
        """The band label of ``age``: "30-39", "90+", "0-9"."""
        p = self.params
        if age >= p.top:
            return f"{p.top}+"
        low = max(age, 0) // p.band_width * p.band_width
        high = low + p.band_width - 1
        return str(low) if high == low else f"{low}-{high}"
