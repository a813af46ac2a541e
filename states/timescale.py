"""Timescales: working days ("5wd") or exact ISO-8601 durations ("PT30S")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

__all__ = ["Timescale", "parse_timescale"]

_WORKING_DAYS = re.compile(r"(-?)(\d+)wd")
# A strict gate in front of pydantic, which would otherwise accept "P1Y" as 365 days and "P1M" as 30.
_ISO_DURATION = re.compile(r"-?P(?=\d|T\d)(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?")
_YEARS_OR_MONTHS = re.compile(r"-?P[^T]*[YM]")
_TIMEDELTA = TypeAdapter(timedelta)

_EXPECTED = "expected working days like '5wd' or an ISO-8601 duration like 'PT30S' or 'P3D'"


@dataclass(frozen=True)
class Timescale:
    """Exactly one of `working_days` and `duration` is set; `text` is what the policy said."""

    working_days: int | None
    duration: timedelta | None
    text: str

    def __post_init__(self) -> None:
        if (self.working_days is None) == (self.duration is None):
            raise ValueError("a timescale has either working days or a duration, not both or neither")

    @property
    def is_working_days(self) -> bool:
        return self.working_days is not None

    @property
    def is_negative(self) -> bool:
        if self.working_days is not None:
            return self.working_days < 0
        assert self.duration is not None
        return self.duration < timedelta(0)

    @property
    def is_zero(self) -> bool:
        return self.working_days == 0 or self.duration == timedelta(0)

    def __str__(self) -> str:
        return self.text


def parse_timescale(text: str, *, allow_negative: bool = False) -> Timescale:
    if not isinstance(text, str):
        raise ValueError(f"{_EXPECTED}, got {type(text).__name__}")
    timescale = _parse(text)
    if timescale.is_negative and not allow_negative:
        raise ValueError(f"{text!r} is negative; only reminders may be negative")
    return timescale


def _parse(text: str) -> Timescale:
    match = _WORKING_DAYS.fullmatch(text)
    if match:
        days = int(match.group(2))
        return Timescale(working_days=-days if match.group(1) else days, duration=None, text=text)
    if _YEARS_OR_MONTHS.match(text):
        raise ValueError(f"{text!r}: years and months vary in length and are not allowed; {_EXPECTED}")
    if not _ISO_DURATION.fullmatch(text):
        raise ValueError(f"{text!r}: {_EXPECTED}")
    try:
        duration = _TIMEDELTA.validate_python(text)
    except ValidationError as exc:
        raise ValueError(f"{text!r}: {_EXPECTED}") from exc
    return Timescale(working_days=None, duration=duration, text=text)
