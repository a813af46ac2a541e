"""Working days: weekends, England and Wales bank holidays and the council's closure days."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from states.policy import CalendarConfig
from states.timescale import Timescale

if TYPE_CHECKING:
    import holidays

__all__ = ["Deadline", "WorkingCalendar", "format_day", "format_due_words"]

# Spelled out rather than strftime("%A %B"): what IROs read must not depend on the server's locale.
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Deadline:
    due_at: datetime
    escalate_at: datetime
    # Every non-working day after the start day and before the escalation day, with why it was skipped.
    skipped: tuple[tuple[date, str], ...]


class WorkingCalendar:
    def __init__(self, config: CalendarConfig) -> None:
        self.config = config
        self._tz = ZoneInfo(config.timezone)
        self._closures = frozenset(config.closure_days)
        self._england_and_wales = config.bank_holidays == "england-and-wales"
        # Made at the first date looked up: see `_bank_holidays_of`.
        self._bank_holidays: holidays.HolidayBase | None = None
        # The package's lazy fill-in marks a year as loaded before adding its holidays; the scheduler and
        # request threads share a calendar, so lookups are serialised.
        self._lock = threading.Lock()

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    def non_working_reason(self, d: date) -> str | None:
        if d.weekday() >= 5:
            return "weekend"
        if self._england_and_wales:
            with self._lock:
                name = self._bank_holidays_of().get(d)
            if name is not None:
                return f"bank holiday: {name}"
        if d in self._closures:
            return "closure day"
        return None

    def _bank_holidays_of(self) -> holidays.HolidayBase:
        """England's bank holidays; called under the lock."""
        if self._bank_holidays is None:
            # Imported at the first date looked up, not at start-up: the holidays package, with
            # python-dateutil, took a tenth of the server's start, and neither the start nor a read needs it.
            import holidays

            # No fixed years: the package fills in each year on first use, so far dates work too.
            self._bank_holidays = holidays.country_holidays("GB", subdiv="ENG")
        return self._bank_holidays

    def is_working_day(self, d: date) -> bool:
        return self.non_working_reason(d) is None

    def add_working_days(self, d: date, n: int) -> date:
        """The nth working day after d (before it, for n < 0); for n == 0, d or the next working day."""
        if n == 0:
            while not self.is_working_day(d):
                d += _ONE_DAY
            return d
        step = _ONE_DAY if n > 0 else -_ONE_DAY
        remaining = abs(n)
        while remaining:
            d += step
            if self.is_working_day(d):
                remaining -= 1
        return d

    def working_days_between(self, start: date, end: date) -> int:
        """The working days in (start, end]."""
        count = 0
        d = start + _ONE_DAY
        while d <= end:
            count += self.is_working_day(d)
            d += _ONE_DAY
        return count

    def deadline(self, start: datetime, timescale: Timescale) -> Deadline:
        _require_aware(start)
        if timescale.is_negative:
            raise ValueError(f"a deadline cannot come before its start: {timescale}")
        if timescale.duration is not None:
            # In UTC: aware arithmetic in a local zone would add wall-clock time across a clock change.
            moment = start.astimezone(UTC) + timescale.duration
            return Deadline(due_at=moment, escalate_at=moment, skipped=())
        assert timescale.working_days is not None
        start_day = self._local_date(start)
        due_day = self.add_working_days(start_day, timescale.working_days)
        escalate_day = self.add_working_days(due_day, 1)
        return Deadline(
            due_at=self._at(due_day, self.config.close_of_business),
            escalate_at=self._at(escalate_day, self.config.start_of_business),
            skipped=self._skipped(start_day, escalate_day),
        )

    def next_working_moment(self, at: datetime) -> datetime:
        """`at` itself on a working day, otherwise start of business on the next working day."""
        _require_aware(at)
        day = self._local_date(at)
        if self.is_working_day(day):
            return at
        return self._at(self.add_working_days(day, 1), self.config.start_of_business)

    def shift(self, at: datetime, timescale: Timescale) -> datetime:
        """A reminder time relative to a due date: start of business n working days away, or at + duration."""
        _require_aware(at)
        if timescale.duration is not None:
            return at.astimezone(UTC) + timescale.duration
        assert timescale.working_days is not None
        day = self.add_working_days(self._local_date(at), timescale.working_days)
        return self._at(day, self.config.start_of_business)

    def add_working_days_to(self, at: datetime, n: int) -> datetime:
        """The same local time of day, n working days later."""
        _require_aware(at)
        local = at.astimezone(self._tz)
        return self._at(self.add_working_days(local.date(), n), local.time())

    def explain_due(self, start: datetime, timescale: Timescale) -> list[str]:
        deadline = self.deadline(start, timescale)
        local_start = start.astimezone(self._tz)
        lines = [
            f"start:      {format_day(local_start.date())} {_clock(local_start)} ({self.config.timezone})",
            f"due:        {self._when(deadline.due_at)}",
            f"escalation: {self._when(deadline.escalate_at)}",
        ]
        if timescale.is_working_days:
            lines.append("skipped:" if deadline.skipped else "skipped:    none")
            lines.extend(f"  {format_day(day)}: {reason}" for day, reason in deadline.skipped)
        return lines

    def _when(self, at: datetime) -> str:
        local = at.astimezone(self._tz)
        return f"{_clock(local)} {format_day(local.date())}"

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self._tz).date()

    def _at(self, day: date, clock: time) -> datetime:
        # zoneinfo picks the offset in force on that day, so 17:00 is 16:00 UTC in summer, 17:00 in winter.
        return datetime.combine(day, clock, tzinfo=self._tz).astimezone(UTC)

    def _skipped(self, start_day: date, escalate_day: date) -> tuple[tuple[date, str], ...]:
        skipped = []
        day = start_day + _ONE_DAY
        while day < escalate_day:
            reason = self.non_working_reason(day)
            if reason is not None:
                skipped.append((day, reason))
            day += _ONE_DAY
        return tuple(skipped)


def format_day(d: date) -> str:
    """ "Wednesday 3 January 2018"."""
    return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"


def format_due_words(at: datetime, tz: tzinfo) -> str:
    """ "5pm on Wednesday 3 January 2018", or "5:30pm on ..." when there are minutes."""
    _require_aware(at)
    local = at.astimezone(tz)
    hour = local.hour % 12 or 12
    minutes = f":{local.minute:02d}" if local.minute else ""
    suffix = "am" if local.hour < 12 else "pm"
    return f"{hour}{minutes}{suffix} on {format_day(local.date())}"


def _clock(at: datetime) -> str:
    # Seconds only matter for duration timescales ("PT30S"), which exist for demos and tests.
    return f"{at:%H:%M:%S}" if at.second else f"{at:%H:%M}"


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {at.isoformat()}")
