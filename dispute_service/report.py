"""The annual report for the Corporate Parenting Board (SPEC section 7), computed in the database.

Every figure is what the audit log and the dispute rows said at the end of the reporting year, so a past
year's report never changes: running the 2017-18 report in 2020 gives what it gave in April 2018.

Three facts keep that cheap on a large history:

- A dispute never moves down the ladder (escalate, timeout, reopen and a referral only ever go up), so the
  highest stage it had reached at the year's end is the stage it stood at then.
- A dispute whose row says it ended (`ended_at`) before the year's end stood exactly as its row stands
  now: leaving an ended state takes a `reopen`, and a reopen clears `ended_at`. Only the few other
  disputes need the audit log to say where they stood, from their last entry before the year's end.
- Corrections made after the year's end (`amend` of the case type or categories) record the value before
  them in the audit log, and the report puts those values back.

Counting is SQL aggregation. Only the working-day spans behind the median are finished in Python, from one
sorted query over the year's closed disputes.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    and_,
    case,
    distinct,
    func,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.errors import ReportForbidden
from dispute_service.ladder import calendar_for
from dispute_service.models import AuditEntry, Dispute
from states.calendar import WorkingCalendar
from states.machine import CASE_TYPES, CATEGORIES, ENDED_STATES, State, Trigger
from states.policy import Policy

READER_ROLES = ("iro_manager", "admin", "head_of_service", "assistant_director")
CASE_TYPE_NAMES = {
    "looked_after": "Looked After Children",
    "child_protection": "children subject to Child Protection Plans",
    "care_leaver": "Care Leavers",
}
ENDED = tuple(sorted(s.value for s in ENDED_STATES))
ENDING_TRIGGERS = (Trigger.RESOLVE.value, Trigger.WITHDRAW.value, Trigger.CLOSE.value)
# `escalate` always moves up; a `reopen` moves up unless the dispute is already at the top of the ladder.
MANUAL_MOVES = (Trigger.ESCALATE.value, Trigger.REOPEN.value)


def require_reader(roles: Iterable[str], who: str) -> None:
    if not set(roles) & set(READER_ROLES):
        raise ReportForbidden(who, READER_ROLES)


# --------------------------------------------------------------------------------------- the year


@dataclass(frozen=True)
class ReportingYear:
    """The reporting year that starts on the 1st of `start_month` in `year`, in local (London) time."""

    year: int
    start_month: int
    tz: ZoneInfo

    @property
    def first_day(self) -> date:
        return date(self.year, self.start_month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year + 1, self.start_month, 1) - timedelta(days=1)

    @property
    def start(self) -> datetime:
        """Local midnight at the start of the first day, in UTC."""
        return _local_midnight(self.first_day, self.tz)

    @property
    def end(self) -> datetime:
        """Local midnight after the last day, in UTC: the year is [start, end)."""
        return _local_midnight(self.last_day + timedelta(days=1), self.tz)

    @property
    def label(self) -> str:
        # A calendar year is just "2017"; any other reporting year spans two: "2017-18".
        return str(self.year) if self.start_month == 1 else f"{self.year}-{(self.year + 1) % 100:02d}"

    @property
    def previous(self) -> ReportingYear:
        return ReportingYear(self.year - 1, self.start_month, self.tz)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


# --------------------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Cohort:
    """The disputes raised in one year, as they stood at that year's end."""

    raised: int
    by_case_type: dict[str, int]
    # (stage, state) at the year's end -> disputes
    positions: Counter[tuple[str, str]]


@dataclass(frozen=True)
class AnnualReport:
    year: ReportingYear
    stage_ids: tuple[str, ...]
    stage_titles: dict[str, str]
    this_year: Cohort
    previous_year: Cohort
    by_category: dict[str, int]
    escalations_automatic: int
    escalations_manual: int
    responses_on_time: int
    responses_late: int
    cafcass_referrals: int
    open_at_year_end: int
    median_working_days_to_close: float | int | None
    sentences: list[str] = field(default_factory=list)

    @property
    def previous_label(self) -> str:
        return self.year.previous.label

    def highest_stage(self, cohort: Cohort) -> dict[str, int]:
        return _by_stage(self.stage_ids, ((stage, n) for (stage, _), n in cohort.positions.items()))

    def resolved_at_stage(self) -> dict[str, int]:
        return _by_stage(
            self.stage_ids,
            ((stage, n) for (stage, state), n in self.this_year.positions.items() if state == State.RESOLVED),
        )

    @property
    def withdrawn(self) -> int:
        return sum(n for (_, state), n in self.this_year.positions.items() if state == State.WITHDRAWN)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of SPEC section 7, key for key."""
        return {
            "period": {
                "start": self.year.first_day.isoformat(),
                "end": self.year.last_day.isoformat(),
                "label": self.year.label,
            },
            "raised": {
                "this_year": self.this_year.raised,
                "previous_year": self.previous_year.raised,
                "change": self.this_year.raised - self.previous_year.raised,
            },
            "by_case_type": dict(self.this_year.by_case_type),
            "by_category": dict(self.by_category),
            "highest_stage": self.highest_stage(self.this_year),
            "resolved_at_stage": self.resolved_at_stage(),
            "escalations": {"automatic": self.escalations_automatic, "manual": self.escalations_manual},
            "responses": {"on_time": self.responses_on_time, "late": self.responses_late},
            "cafcass_referrals": self.cafcass_referrals,
            "withdrawn": self.withdrawn,
            "open_at_year_end": self.open_at_year_end,
            "median_working_days_to_close": self.median_working_days_to_close,
            "sentences": list(self.sentences),
        }


def _by_stage(stage_ids: Sequence[str], counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Every stage of the policy in ladder order, zero where none; a stage from an older policy after."""
    out = dict.fromkeys(stage_ids, 0)
    for stage, n in counts:
        out[stage] = out.get(stage, 0) + n
    return out


def sentence(case_type: str, this_year: int, previous_year: int) -> str:
    """One plain sentence for the report, worded for a rise, a fall or no change."""
    who = CASE_TYPE_NAMES.get(case_type, case_type)
    if this_year > previous_year:
        return (
            f"The number of escalations has increased this year to {this_year} for {who} "
            f"from {previous_year} the previous year."
        )
    if this_year < previous_year:
        return (
            f"The number of escalations has decreased this year to {this_year} for {who} "
            f"from {previous_year} the previous year."
        )
    return f"The number of escalations has stayed the same this year at {this_year} for {who}."


def annual_report(
    sessions: sessionmaker[Session], policy: Policy, year: int, *, start_month: int = 4
) -> AnnualReport:
    """The report for the reporting year that starts on the 1st of `start_month` in `year`.

    One read-only transaction, so every query sees the same moment (REPEATABLE READ on PostgreSQL; SQLite's
    transaction is a snapshot already).
    """
    calendar = calendar_for(policy.calendar)
    period = ReportingYear(year, start_month, calendar.tz)
    with sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        this_year = _cohort(session, period)
        previous_year = _cohort(session, period.previous)
        automatic, manual = _escalations(session, period)
        on_time, late = _responses(session, period)
        report = AnnualReport(
            year=period,
            stage_ids=policy.stage_ids,
            stage_titles={s.id: s.title for s in policy.stages},
            this_year=this_year,
            previous_year=previous_year,
            by_category=_by_category(session, period),
            escalations_automatic=automatic,
            escalations_manual=manual,
            responses_on_time=on_time,
            responses_late=late,
            cafcass_referrals=_cafcass_referrals(session, period),
            open_at_year_end=_open_at_year_end(session, period),
            median_working_days_to_close=_median_working_days(session, period, calendar),
            sentences=[
                sentence(ct, this_year.by_case_type.get(ct, 0), previous_year.by_case_type.get(ct, 0))
                for ct in CASE_TYPES
            ],
        )
    return report


# --------------------------------------------------------------------------------------- the queries


def _raised_in(period: ReportingYear) -> ColumnElement[bool]:
    return and_(Dispute.raised_at >= period.start, Dispute.raised_at < period.end)


def _not_ended_before(end: datetime) -> ColumnElement[bool]:
    # A NULL ended_at (still open) is the usual case; `ended_at >= end` ended after the year's end.
    return or_(Dispute.ended_at.is_(None), Dispute.ended_at >= end)


def _last_entry_before(end: datetime) -> ColumnElement[bool]:
    """Join condition: the dispute's last audit entry dated before `end` (its position at that moment)."""
    last_seq = (
        select(func.max(AuditEntry.seq))
        .where(AuditEntry.dispute_id == Dispute.id, AuditEntry.at < end)
        .correlate(Dispute)
        .scalar_subquery()
    )
    return and_(AuditEntry.dispute_id == Dispute.id, AuditEntry.seq == last_seq)


def _cohort(session: Session, period: ReportingYear) -> Cohort:
    raised_in = _raised_in(period)
    raised = session.scalar(select(func.count()).select_from(Dispute).where(raised_in)) or 0

    by_case_type = dict.fromkeys(CASE_TYPES, 0)
    for case_type, n in session.execute(
        select(Dispute.case_type, func.count()).where(raised_in).group_by(Dispute.case_type)
    ):
        by_case_type[case_type] = by_case_type.get(case_type, 0) + n
    for before, now in _case_type_amended_after(session, period):
        by_case_type[now] -= 1
        by_case_type[before] = by_case_type.get(before, 0) + 1

    positions: Counter[tuple[str, str]] = Counter()
    # Ended before the year's end: the row is as it stood then.
    ended = (
        select(Dispute.stage, Dispute.state, func.count())
        .where(raised_in, Dispute.ended_at < period.end)
        .group_by(Dispute.stage, Dispute.state)
    )
    # The rest: the last audit entry before the year's end says where each stood.
    others = (
        select(AuditEntry.to_stage, AuditEntry.to_state, func.count())
        .select_from(Dispute)
        .join(AuditEntry, _last_entry_before(period.end))
        .where(raised_in, _not_ended_before(period.end))
        .group_by(AuditEntry.to_stage, AuditEntry.to_state)
    )
    for query in (ended, others):
        for stage, state, n in session.execute(query):
            positions[(stage, state)] += n
    return Cohort(raised=raised, by_case_type=by_case_type, positions=positions)


def _amendments_after(session: Session, period: ReportingYear) -> dict[Any, dict[str, Any]]:
    """For the year's disputes corrected after the year's end: each corrected field's value at the end.

    An `amend` entry records the values before it, so the first correction after the year's end holds the
    value the report would have shown then. Corrections are rare, so this reads their entries one by one.
    """
    rows = session.execute(
        select(AuditEntry.dispute_id, AuditEntry.details)
        .join(Dispute, Dispute.id == AuditEntry.dispute_id)
        .where(
            AuditEntry.trigger == Trigger.AMEND.value,
            AuditEntry.at >= period.end,
            _raised_in(period),
        )
        .order_by(AuditEntry.dispute_id, AuditEntry.seq)
    ).all()
    at_year_end: dict[Any, dict[str, Any]] = {}
    for dispute_id, details in rows:
        before = json.loads(details).get("before", {})
        fields = at_year_end.setdefault(dispute_id, {})
        for name, value in before.items():
            fields.setdefault(name, value)
    return at_year_end


def _current_values(session: Session, ids: Iterable[Any], column: Any) -> dict[Any, Any]:
    wanted = list(ids)
    found: dict[Any, Any] = {}
    for chunk in range(0, len(wanted), 500):
        found.update(
            session.execute(
                select(Dispute.id, column).where(Dispute.id.in_(wanted[chunk : chunk + 500]))
            ).all()
        )
    return found


def _case_type_amended_after(session: Session, period: ReportingYear) -> list[tuple[str, str]]:
    """(case type at the year's end, case type now) for each dispute whose case type was corrected since."""
    amended = {
        dispute_id: fields["case_type"]
        for dispute_id, fields in _amendments_after(session, period).items()
        if "case_type" in fields
    }
    now = _current_values(session, amended, Dispute.case_type)
    return [(amended[d], now[d]) for d in amended if amended[d] != now[d]]


def _category_values(session: Session) -> Any:
    """A table of each dispute's categories, one row per category (the JSON array unnested)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.json_array_elements_text(Dispute.categories).table_valued("value")
    return func.json_each(Dispute.categories).table_valued("value")


def _by_category(session: Session, period: ReportingYear) -> dict[str, int]:
    each = _category_values(session)
    counts = dict.fromkeys(CATEGORIES, 0)
    query = (
        select(each.c.value, func.count())
        .select_from(Dispute)
        .join(each, true())
        .where(_raised_in(period))
        .group_by(each.c.value)
    )
    for category, n in session.execute(query):
        counts[category] = counts.get(category, 0) + n
    amended = {
        dispute_id: fields["categories"]
        for dispute_id, fields in _amendments_after(session, period).items()
        if "categories" in fields
    }
    for dispute_id, now in _current_values(session, amended, Dispute.categories).items():
        for category in now:
            counts[category] -= 1
        for category in amended[dispute_id]:
            counts[category] = counts.get(category, 0) + 1
    return counts


def _entries_in(period: ReportingYear, *triggers: str) -> ColumnElement[bool]:
    # Served by ix_audit_entries_trigger_at: a range per trigger.
    return and_(AuditEntry.trigger.in_(triggers), AuditEntry.at >= period.start, AuditEntry.at < period.end)


def _escalations(session: Session, period: ReportingYear) -> tuple[int, int]:
    """Stage moves dated in the year, whoever raised the dispute and whenever: (automatic, manual)."""
    automatic = case((AuditEntry.trigger == Trigger.TIMEOUT.value, 1), else_=0)
    row = session.execute(
        select(func.coalesce(func.sum(automatic), 0), func.count()).where(
            _entries_in(period, Trigger.TIMEOUT.value, *MANUAL_MOVES),
            AuditEntry.from_stage != AuditEntry.to_stage,
        )
    ).one()
    return int(row[0]), int(row[1]) - int(row[0])


def _responses(session: Session, period: ReportingYear) -> tuple[int, int]:
    """Responses to the year's disputes given by the year's end: (on time, late).

    Every entry of a dispute raised in the year is dated in the year or later, so the year's range of
    `respond` entries holds them all.
    """
    # The respond entry's details are canonical JSON, {"late":true} or {"late":false}.
    late = case((AuditEntry.details.like('%"late":true%'), 1), else_=0)
    row = session.execute(
        select(func.coalesce(func.sum(late), 0), func.count())
        .select_from(AuditEntry)
        .join(Dispute, Dispute.id == AuditEntry.dispute_id)
        .where(_entries_in(period, Trigger.RESPOND.value), _raised_in(period))
    ).one()
    return int(row[1]) - int(row[0]), int(row[0])


def _cafcass_referrals(session: Session, period: ReportingYear) -> int:
    return (
        session.scalar(
            select(func.count(distinct(AuditEntry.dispute_id)))
            .select_from(AuditEntry)
            .join(Dispute, Dispute.id == AuditEntry.dispute_id)
            .where(_entries_in(period, Trigger.REFER_TO_CAFCASS.value), _raised_in(period))
        )
        or 0
    )


def _open_at_year_end(session: Session, period: ReportingYear) -> int:
    """Every dispute open at the year's end, whenever it was raised.

    Raised before the end, less those whose row says they ended before it, less those that had ended but
    were reopened after the end (their row no longer says so; their audit log does).
    """
    end = period.end
    raised = session.scalar(select(func.count()).select_from(Dispute).where(Dispute.raised_at < end)) or 0
    ended = session.scalar(select(func.count()).select_from(Dispute).where(Dispute.ended_at < end)) or 0
    reopened_later = select(AuditEntry.dispute_id).where(
        AuditEntry.trigger == Trigger.REOPEN.value, AuditEntry.at >= end
    )
    ended_then_reopened = (
        session.scalar(
            select(func.count())
            .select_from(Dispute)
            .join(AuditEntry, _last_entry_before(end))
            .where(
                Dispute.id.in_(reopened_later),
                Dispute.raised_at < end,
                _not_ended_before(end),
                AuditEntry.to_state.in_(ENDED),
            )
        )
        or 0
    )
    return raised - ended - ended_then_reopened


def _median_working_days(
    session: Session, period: ReportingYear, calendar: WorkingCalendar
) -> float | int | None:
    """Median working days from raise to close over the year's disputes that had ended by its end."""
    raised_in = _raised_in(period)
    closed_then: ScalarSelect[Any] = (
        select(func.max(AuditEntry.at))
        .where(
            AuditEntry.dispute_id == Dispute.id,
            AuditEntry.at < period.end,
            AuditEntry.trigger.in_(ENDING_TRIGGERS),
        )
        .correlate(Dispute)
        .scalar_subquery()
    )
    from_rows = select(Dispute.raised_at, Dispute.ended_at).where(raised_in, Dispute.ended_at < period.end)
    from_audit = (
        select(Dispute.raised_at, closed_then)
        .select_from(Dispute)
        .join(AuditEntry, _last_entry_before(period.end))
        .where(raised_in, _not_ended_before(period.end), AuditEntry.to_state.in_(ENDED))
    )
    spans = union_all(from_rows, from_audit).order_by(literal_column("1"))
    pairs = [(raised, closed) for raised, closed in session.execute(spans) if closed is not None]
    if not pairs:
        return None
    days = WorkingDaySpans(calendar, [_local(t, calendar) for pair in pairs for t in pair])
    median = statistics.median(days.between(_local(r, calendar), _local(c, calendar)) for r, c in pairs)
    return int(median) if float(median).is_integer() else float(median)


def _local(at: datetime, calendar: WorkingCalendar) -> date:
    return at.astimezone(calendar.tz).date()


class WorkingDaySpans:
    """`WorkingCalendar.working_days_between` for many spans: one pass over the days, then O(1) each."""

    def __init__(self, calendar: WorkingCalendar, days: Sequence[date]) -> None:
        self._first = min(days)
        last = max(days)
        self._cumulative = [0]
        d = self._first
        while d < last:
            d += timedelta(days=1)
            self._cumulative.append(self._cumulative[-1] + calendar.is_working_day(d))

    def between(self, start: date, end: date) -> int:
        """The working days in (start, end], as the calendar counts them."""
        return self._cumulative[(end - self._first).days] - self._cumulative[(start - self._first).days]
