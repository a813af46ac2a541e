"""The annual report for the Corporate Parenting Board, computed in the database.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    DateTime,
    ScalarSelect,
    and_,
    case,
    distinct,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from dispute_service.access import Actor
from dispute_service.models import AuditEntry, Dispute, Organisation
from dispute_service.queries import log_read
from dispute_service.stages import calendar_for
from states.calendar import WorkingCalendar
from states.policy import OWN_LADDER_ID, Policy
from states.vocabulary import CASE_TYPES, CATEGORIES, ENDED_STATES, OrganisationKind, State, Trigger

CASE_TYPE_NAMES = {
    "looked_after": "Looked After Children",
    "child_protection": "children subject to Child Protection Plans",
    "care_leaver": "Care Leavers",
}
ENDED = tuple(sorted(s.value for s in ENDED_STATES))
ENDING_TRIGGERS = (Trigger.RESOLVE.value, Trigger.WITHDRAW.value, Trigger.CLOSE.value)
# Who a partner sentence is about, by the kind of organisation on the other side (SPEC 10).
KIND_NAMES = {
    OrganisationKind.PARTNER.value: "partner agencies",
    OrganisationKind.OTHER_AUTHORITY.value: "other local authorities",
}


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
class LadderFigures:
    """One ladder's or one organisation's year: raised in it, stage moves up in it, resolved in it, and
    open at its end (the first as the other measures' cohort, the rest as `escalations` and
    `open_at_year_end` count them)."""

    raised: int = 0
    escalations: int = 0
    resolved: int = 0
    open: int = 0

    def __add__(self, other: LadderFigures) -> LadderFigures:
        return LadderFigures(
            self.raised + other.raised,
            self.escalations + other.escalations,
            self.resolved + other.resolved,
            self.open + other.open,
        )

    def __sub__(self, other: LadderFigures) -> LadderFigures:
        return LadderFigures(
            self.raised - other.raised,
            self.escalations - other.escalations,
            self.resolved - other.resolved,
            self.open - other.open,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "raised": self.raised,
            "escalations": self.escalations,
            "resolved": self.resolved,
            "open": self.open,
        }


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
    # One sentence per case type, in CASE_TYPES order.
    sentences: list[str] = field(default_factory=list)
    # Every ladder of the policy in its order (own first), then any other a dispute climbed.
    by_ladder: dict[str, LadderFigures] = field(default_factory=dict)
    # Only the organisations with a figure in the year, by id: a past year's report must not change when
    # an organisation is added later.
    by_organisation: dict[str, LadderFigures] = field(default_factory=dict)
    ladder_titles: dict[str, str] = field(default_factory=dict)
    organisation_names: dict[str, str] = field(default_factory=dict)
    # One sentence per kind of organisation, only for a kind with disputes raised in the year.
    partner_sentences: dict[str, str] = field(default_factory=dict)
    # The partner ladders' stages, in the policy's order: a breakdown by stage lists those reached after
    # the council's own, and only those, so a year without partners reads as it always did.
    partner_stage_ids: tuple[str, ...] = ()

    @property
    def previous_label(self) -> str:
        return self.year.previous.label

    def highest_stage(self, cohort: Cohort) -> dict[str, int]:
        return _by_stage(
            self.stage_ids,
            ((stage, n) for (stage, _), n in cohort.positions.items()),
            self.partner_stage_ids,
        )

    def resolved_at_stage(self) -> dict[str, int]:
        return _by_stage(
            self.stage_ids,
            ((stage, n) for (stage, state), n in self.this_year.positions.items() if state == State.RESOLVED),
            self.partner_stage_ids,
        )

    @property
    def withdrawn(self) -> int:
        return sum(n for (_, state), n in self.this_year.positions.items() if state == State.WITHDRAWN)

    def keyed_sentences(self) -> list[tuple[str, str]]:
        """(case type or organisation kind, sentence), in the order of `to_dict`'s sentences."""
        return [*zip(CASE_TYPES, self.sentences, strict=True), *self.partner_sentences.items()]

    def to_dict(self) -> dict[str, Any]:
        """The report as the API returns it: one key per measure, one per breakdown."""
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
            "by_ladder": {ladder: f.to_dict() for ladder, f in self.by_ladder.items()},
            "by_organisation": {org: f.to_dict() for org, f in self.by_organisation.items()},
            "sentences": [text for _, text in self.keyed_sentences()],
        }


def _by_stage(
    stage_ids: Sequence[str], counts: Iterable[tuple[str, int]], partner_stage_ids: Sequence[str] = ()
) -> dict[str, int]:
    """Every stage of the council's own ladder in order, zero where none; then the partner ladders' stages
    reached, in the policy's order; then a stage from an older policy."""
    out = dict.fromkeys(stage_ids, 0)
    for stage, n in counts:
        out[stage] = out.get(stage, 0) + n
    order = {stage: i for i, stage in enumerate((*stage_ids, *partner_stage_ids))}
    return dict(sorted(out.items(), key=lambda item: order.get(item[0], len(order))))


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


def partner_sentence(kind: str, raised_by_ladder: dict[str, int], escalations: int) -> str:
    """The year's disputes with one kind of organisation, by ladder title: "3 disputes were raised with
    partner agencies (NHS partners: 3), with 2 escalations." """
    raised = sum(raised_by_ladder.values())
    parts = ", ".join(f"{title}: {n}" for title, n in raised_by_ladder.items())
    disputes = "1 dispute was" if raised == 1 else f"{raised} disputes were"
    moves = {0: "no escalations", 1: "1 escalation"}.get(escalations, f"{escalations} escalations")
    return f"{disputes} raised with {KIND_NAMES.get(kind, kind)} ({parts}), with {moves}."


def _figures_by_party(
    totals: LadderFigures, partners: dict[Party, LadderFigures]
) -> dict[Party, LadderFigures]:
    """The partners' figures, and the council's own ladder's: the rest of the year's totals."""
    own = totals - sum(partners.values(), LadderFigures())
    found = {**partners, OWN: own} if own != LadderFigures() else partners
    return dict(sorted(found.items(), key=lambda item: (item[0][0], item[0][1] or "")))


def _by_ladder(policy: Policy, by_party: dict[Party, LadderFigures]) -> dict[str, LadderFigures]:
    """Every ladder of the policy in its order, zero where none; a ladder of an older policy after."""
    out = {ladder.id: LadderFigures() for ladder in policy.all_ladders}
    for (ladder, _), figures in by_party.items():
        out[ladder] = out.get(ladder, LadderFigures()) + figures
    return out


def _by_organisation(by_party: dict[Party, LadderFigures]) -> dict[str, LadderFigures]:
    out: dict[str, LadderFigures] = {}
    for (_, organisation), figures in by_party.items():
        if organisation is not None:
            out[organisation] = out.get(organisation, LadderFigures()) + figures
    return dict(sorted(out.items()))


def _organisations(session: Session, ids: set[str]) -> dict[str, tuple[str, str]]:
    """(name, kind) of each organisation with a figure in the year: a handful, read by key. Run even for
    none, so the report is the same statements for every year."""
    rows = session.execute(
        select(Organisation.id, Organisation.name, Organisation.kind).where(Organisation.id.in_(sorted(ids)))
    )
    return {org: (name, kind) for org, name, kind in rows}


def _partner_sentences(
    by_party: dict[Party, LadderFigures], kinds: dict[str, str], ladder_titles: dict[str, str]
) -> dict[str, str]:
    """One sentence per kind of organisation with disputes raised in the year, partner agencies first.

    The kind is the organisation's, not the ladder's, so a dispute on a ladder since dropped from the
    policy is still told under the right kind (by its ladder id, having no title any more).
    """
    # Ladders in the policy's order within a sentence; one since dropped from the policy after.
    order = {ladder: i for i, ladder in enumerate(ladder_titles)}
    parties = sorted(by_party.items(), key=lambda item: (order.get(item[0][0], len(order)), item[0]))
    out: dict[str, str] = {}
    for kind in KIND_NAMES:
        raised: dict[str, int] = {}
        escalations = 0
        for (ladder, organisation), figures in parties:
            if ladder == OWN_LADDER_ID or organisation is None or kinds.get(organisation) != kind:
                continue
            if figures.raised:
                title = ladder_titles.get(ladder, ladder)
                raised[title] = raised.get(title, 0) + figures.raised
            escalations += figures.escalations
        if raised:
            out[kind] = partner_sentence(kind, raised, escalations)
    return out


def annual_report(
    session: Session, policy: Policy, year: int, *, start_month: int = 4, reader: Actor | None = None
) -> AnnualReport:
    """The report for the reporting year that starts on the 1st of `start_month` in `year`.

    Its queries must all see the same moment: run it in a `read_snapshot` transaction. A `reader` (a
    person, over the API) is logged as having read it; the command line, whose output may be the report's
    JSON itself, is not.
    """
    calendar = calendar_for(policy.calendar)
    period = ReportingYear(year, start_month, calendar.tz)
    if session.get_bind().dialect.name == "postgresql":
        # The per-dispute subqueries make the planner's cost estimates large, and compiling them with
        # JIT costs more than running them (70 ms of 80 ms on a year of a million-dispute history).
        session.execute(text("SET LOCAL jit = off"))
    corrections = _corrections(session, period)
    this_year = _cohort(session, period, corrections)
    previous_year = _cohort(session, period.previous, _corrections(session, period.previous))
    automatic, manual = _escalations(session, period)
    totals = LadderFigures(
        raised=this_year.raised,
        escalations=automatic + manual,
        resolved=_resolved(session, period),
        open=_open_at_year_end(session, period),
    )
    by_party = _figures_by_party(totals, _partner_figures(session, period))
    organisations = _organisations(session, {org for _, org in by_party if org is not None})
    by_ladder = _by_ladder(policy, by_party)
    ladder_titles = {ladder.id: ladder.title for ladder in policy.all_ladders}
    on_time, late = _responses(session, period)
    report = AnnualReport(
        year=period,
        stage_ids=policy.stage_ids,
        stage_titles={s.id: s.title for ladder in policy.all_ladders for s in ladder.stages},
        this_year=this_year,
        previous_year=previous_year,
        by_category=_by_category(session, period, corrections),
        escalations_automatic=automatic,
        escalations_manual=manual,
        responses_on_time=on_time,
        responses_late=late,
        cafcass_referrals=_cafcass_referrals(session, period),
        open_at_year_end=totals.open,
        median_working_days_to_close=_median_working_days(session, period, calendar),
        sentences=[
            sentence(ct, this_year.by_case_type.get(ct, 0), previous_year.by_case_type.get(ct, 0))
            for ct in CASE_TYPES
        ],
        by_ladder=by_ladder,
        by_organisation=_by_organisation(by_party),
        ladder_titles=ladder_titles,
        organisation_names={org: name for org, (name, _) in organisations.items()},
        partner_stage_ids=tuple(s for ladder in policy.ladders for s in ladder.stage_ids),
        partner_sentences=_partner_sentences(
            by_party, {org: kind for org, (_, kind) in organisations.items()}, ladder_titles
        ),
    )
    if reader is not None:
        log_read(session, "report.read", reader, report="annual", year=period.label)
    return report


# --------------------------------------------------------------------------------------- the queries


def _raised_in(period: ReportingYear) -> ColumnElement[bool]:
    return and_(Dispute.raised_at >= period.start, Dispute.raised_at < period.end)


def _not_ended_before(end: datetime) -> ColumnElement[bool]:
    # A NULL ended_at (still open) is the usual case; `ended_at >= end` ended after the year's end.
    return or_(Dispute.ended_at.is_(None), Dispute.ended_at >= end)


def _then(column: Any, end: datetime) -> ScalarSelect[Any]:
    """`column` of the dispute's last audit entry before `end`: where it stood at that moment.

    A subquery per dispute, walking the (dispute_id, seq) index backwards; used only for the few disputes
    whose row cannot say (still open at the end, or ended after it).
    """
    return (
        select(column)
        .where(AuditEntry.dispute_id == Dispute.id, AuditEntry.at < end)
        .order_by(AuditEntry.seq.desc())
        .limit(1)
        .correlate(Dispute)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class Corrections:
    """The year's disputes whose case type or categories were corrected after the year's end."""

    # (value at the year's end, value now) per corrected dispute
    case_types: list[tuple[str, str]]
    categories: list[tuple[list[str], list[str]]]


def _corrections(session: Session, period: ReportingYear) -> Corrections:
    """An `amend` entry records the values before it, so the first correction after the year's end holds
    the value the report showed then. Corrections are rare: their entries are read one by one."""
    at_end: dict[Any, dict[str, Any]] = {}
    for dispute_id, details in session.execute(
        select(AuditEntry.dispute_id, AuditEntry.details)
        .where(AuditEntry.trigger == Trigger.AMEND.value, AuditEntry.at >= period.end)
        .order_by(AuditEntry.dispute_id, AuditEntry.seq)
    ):
        fields = at_end.setdefault(dispute_id, {})
        for name, value in json.loads(details).get("before", {}).items():
            fields.setdefault(name, value)
    case_types: list[tuple[str, str]] = []
    categories: list[tuple[list[str], list[str]]] = []
    ids = list(at_end)
    for first in range(0, len(ids), 500):
        for dispute_id, case_type, now_categories in session.execute(
            select(Dispute.id, Dispute.case_type, Dispute.categories).where(
                Dispute.id.in_(ids[first : first + 500]), _raised_in(period)
            )
        ):
            fields = at_end[dispute_id]
            if fields.get("case_type", case_type) != case_type:
                case_types.append((fields["case_type"], case_type))
            if fields.get("categories", now_categories) != now_categories:
                categories.append((fields["categories"], now_categories))
    return Corrections(case_types, categories)


def _cohort(session: Session, period: ReportingYear, corrections: Corrections) -> Cohort:
    raised_in, end = _raised_in(period), period.end
    raised = 0
    by_case_type = dict.fromkeys(CASE_TYPES, 0)
    positions: Counter[tuple[str, str]] = Counter()
    # One pass over the year's rows, which the report index covers. A row that ended before the year's
    # end is as it stood then.
    rows = (
        select(Dispute.case_type, Dispute.stage, Dispute.state, (Dispute.ended_at < end).label("ended"))
        .where(raised_in)
        .subquery()
    )
    for case_type, stage, state, ended, n in session.execute(
        select(rows.c.case_type, rows.c.stage, rows.c.state, rows.c.ended, func.count()).group_by(
            rows.c.case_type, rows.c.stage, rows.c.state, rows.c.ended
        )
    ):
        raised += n
        by_case_type[case_type] = by_case_type.get(case_type, 0) + n
        if ended:
            positions[(stage, state)] += n
    # The rest: their last audit entry before the year's end says where each stood.
    then = (
        select(_then(AuditEntry.to_stage, end).label("stage"), _then(AuditEntry.to_state, end).label("state"))
        .where(raised_in, _not_ended_before(end))
        .subquery()
    )
    for stage, state, n in session.execute(
        select(then.c.stage, then.c.state, func.count()).group_by(then.c.stage, then.c.state)
    ):
        positions[(stage, state)] += n
    for before, now in corrections.case_types:
        by_case_type[now] -= 1
        by_case_type[before] = by_case_type.get(before, 0) + 1
    return Cohort(raised=raised, by_case_type=by_case_type, positions=positions)


def _category_values(session: Session) -> Any:
    """A table of each dispute's categories, one row per category (the JSON array unnested)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.json_array_elements_text(Dispute.categories).table_valued("value")
    return func.json_each(Dispute.categories).table_valued("value")


def _by_category(session: Session, period: ReportingYear, corrections: Corrections) -> dict[str, int]:
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
    for before, now in corrections.categories:
        for category in now:
            counts[category] -= 1
        for category in before:
            counts[category] = counts.get(category, 0) + 1
    return counts


def _entries_in(period: ReportingYear, *triggers: str) -> ColumnElement[bool]:
    # Served by ix_audit_entries_trigger_at: a range per trigger.
    return and_(AuditEntry.trigger.in_(triggers), AuditEntry.at >= period.start, AuditEntry.at < period.end)


def _of_the_years_disputes(period: ReportingYear) -> ColumnElement[bool]:
    # The year's dispute ids come from the report index alone; the database probes them per entry.
    return AuditEntry.dispute_id.in_(select(Dispute.id).where(_raised_in(period)))


# A dispute's ladder and organisation are set when it is raised and never change, so its row says which
# ladder and organisation each of its figures belongs to, in any year.
Party = tuple[str, str | None]
OWN: Party = (OWN_LADDER_ID, None)

# Disputes with partners are few. Their figures are read from their own rows, found through a partial
# index of them alone (ix_disputes_partners, migration 0012), and the council's own ladder's are the year's
# totals less theirs. The totals come from the indexes the report already had, without reading a dispute's
# row: grouping every dispute by its ladder read a row per dispute, and took the report on a million
# disputes from 0.7 s to 5 s. Written as the index's own condition, and the only condition on the rows
# (the rest are inside CASE): SQLite uses a partial index only for a query that repeats its condition, and
# prefers an index for any range it is given.
PARTNERS_ONLY = text("disputes.ladder <> 'own'")
# The same for the resolutions' partial index, which holds each one's dispute (ix_audit_entries_resolutions,
# 0012): PostgreSQL counts a year's from it alone (15 ms, where (trigger, at) and the rows took 260 ms on a
# million disputes); SQLite's planner keeps to (trigger, at), 140 ms.
RESOLUTIONS_ONLY = text("audit_entries.\"trigger\" = 'resolve'")
assert OWN_LADDER_ID == "own" and Trigger.RESOLVE.value == "resolve"


def _moving_up(period: ReportingYear) -> ColumnElement[bool]:
    """Stage moves dated in the year: a timeout or an escalation always moves up (the machine has no
    other transitions for them); a reopen moves up unless it is at the top already."""
    return or_(
        _entries_in(period, Trigger.TIMEOUT.value, Trigger.ESCALATE.value),
        and_(_entries_in(period, Trigger.REOPEN.value), AuditEntry.from_stage != AuditEntry.to_stage),
    )


def _escalations(session: Session, period: ReportingYear) -> tuple[int, int]:
    """Stage moves dated in the year, whoever raised the dispute and whenever: (automatic, manual), from
    the (trigger, at) index alone."""
    # Two queries, each a range of the index: their OR in one query took PostgreSQL 170 ms, these 10.
    moves: Counter[str] = Counter()
    for trigger, n in session.execute(
        select(AuditEntry.trigger, func.count())
        .where(_entries_in(period, Trigger.TIMEOUT.value, Trigger.ESCALATE.value))
        .group_by(AuditEntry.trigger)
    ):
        moves[trigger] += n
    reopened = session.scalar(
        select(func.count()).where(
            _entries_in(period, Trigger.REOPEN.value), AuditEntry.from_stage != AuditEntry.to_stage
        )
    )
    automatic = moves[Trigger.TIMEOUT.value]
    return automatic, moves[Trigger.ESCALATE.value] + (reopened or 0)


def _resolved(session: Session, period: ReportingYear) -> int:
    """Disputes resolved in the year, whenever raised: one resolved, reopened and resolved again in the
    same year counts once."""
    resolved = select(func.count(distinct(AuditEntry.dispute_id))).where(
        RESOLUTIONS_ONLY, AuditEntry.at >= period.start, AuditEntry.at < period.end
    )
    return session.scalar(resolved) or 0


def _open_at_year_end(session: Session, period: ReportingYear) -> int:
    """Every dispute open at the year's end, whenever it was raised: of those raised before the end and
    not ended before it by their row, the ones whose last entry before the end leaves them open (one that
    ended then but was reopened later is not)."""
    return session.scalar(select(func.count()).select_from(Dispute).where(_open_then(period.end))) or 0


def _open_then(end: datetime) -> ColumnElement[bool]:
    return and_(
        Dispute.raised_at < end, _not_ended_before(end), _then(AuditEntry.to_state, end).not_in(ENDED)
    )


def _responses(session: Session, period: ReportingYear) -> tuple[int, int]:
    """Responses to the year's disputes given by the year's end: (on time, late).

    Every entry of a dispute raised in the year is dated in the year or later, so the year's range of
    `respond` entries holds them all.
    """
    # The respond entry's details are canonical JSON, {"late":true} or {"late":false}.
    late = case((AuditEntry.details.like('%"late":true%'), 1), else_=0)
    row = session.execute(
        select(func.coalesce(func.sum(late), 0), func.count()).where(
            _entries_in(period, Trigger.RESPOND.value), _of_the_years_disputes(period)
        )
    ).one()
    return int(row[1]) - int(row[0]), int(row[0])


def _cafcass_referrals(session: Session, period: ReportingYear) -> int:
    # Referrals are few: each one's dispute is looked up by its key.
    return (
        session.scalar(
            select(func.count(distinct(AuditEntry.dispute_id)))
            .join(Dispute, Dispute.id == AuditEntry.dispute_id)
            .where(_entries_in(period, Trigger.REFER_TO_CAFCASS.value), _raised_in(period))
        )
        or 0
    )


def _partner_figures(session: Session, period: ReportingYear) -> dict[Party, LadderFigures]:
    """The year's figures of each partner ladder and organisation, as the totals count them, one row per
    partner dispute. A dispute that ended before the year began has no entry in it: leaving an ended
    state takes a reopen, which clears `ended_at`."""

    def entries(*conditions: ColumnElement[bool]) -> ScalarSelect[Any]:
        return (
            select(func.count())
            .where(AuditEntry.dispute_id == Dispute.id, *conditions)
            .correlate(Dispute)
            .scalar_subquery()
        )

    in_play = and_(Dispute.raised_at < period.end, _not_ended_before(period.start))
    resolved_in_year = entries(_entries_in(period, Trigger.RESOLVE.value)) > 0
    rows = select(
        Dispute.ladder,
        Dispute.organisation_id,
        func.sum(case((_raised_in(period), 1), else_=0)),
        func.sum(case((in_play, entries(_moving_up(period))), else_=0)),
        func.sum(case((and_(in_play, resolved_in_year), 1), else_=0)),
        func.sum(case((_open_then(period.end), 1), else_=0)),
    ).where(PARTNERS_ONLY)
    return {
        (ladder, organisation): LadderFigures(int(raised), int(escalations), int(resolved), int(open_))
        for ladder, organisation, raised, escalations, resolved, open_ in session.execute(
            rows.group_by(Dispute.ladder, Dispute.organisation_id)
        )
        if raised or escalations or resolved or open_
    }


def _median_working_days(
    session: Session, period: ReportingYear, calendar: WorkingCalendar
) -> float | int | None:
    """Median working days from raise to close over the year's disputes that had ended by its end."""
    raised_in, end = _raised_in(period), period.end
    closed_then = (
        select(func.max(AuditEntry.at))
        .where(
            AuditEntry.dispute_id == Dispute.id,
            AuditEntry.at < end,
            AuditEntry.trigger.in_(ENDING_TRIGGERS),
        )
        .correlate(Dispute)
        .scalar_subquery()
    )
    utc = _naive_utc(session)
    from_rows = select(utc(Dispute.raised_at), utc(Dispute.ended_at)).where(raised_in, Dispute.ended_at < end)
    then = (
        select(
            utc(Dispute.raised_at).label("raised_at"),
            utc(closed_then).label("closed_at"),
            _then(AuditEntry.to_state, end).label("state"),
        )
        .where(raised_in, _not_ended_before(end))
        .subquery()
    )
    from_audit = select(then.c.raised_at, then.c.closed_at).where(then.c.state.in_(ENDED))
    spans = union_all(from_rows, from_audit).order_by(literal_column("1"))
    local = LocalDates(calendar.tz)
    days = [
        (local(raised), local(closed))
        for raised, closed in session.execute(spans).all()
        if closed is not None
    ]
    if not days:
        return None
    count = WorkingDaySpans(calendar, min(r for r, _ in days), max(c for _, c in days))
    median = statistics.median(count.between(raised, closed) for raised, closed in days)
    return int(median) if float(median).is_integer() else float(median)


def _naive_utc(session: Session) -> Callable[[Any], Any]:
    """Times as naive UTC, read straight from the driver: tens of thousands of them are read for the
    median, and the aware conversion of every one would cost more than the query."""
    if session.get_bind().dialect.name == "postgresql":
        return lambda column: type_coerce(func.timezone("UTC", column), DateTime())
    return lambda column: type_coerce(column, DateTime())


class LocalDates:
    """Naive UTC time -> local date. Exact, and cheap for many times: a UTC day whose offset is the same
    from its first moment to its last (every day but the two with a clock change) needs one addition."""

    def __init__(self, tz: ZoneInfo) -> None:
        self._tz = tz
        self._offsets: dict[date, timedelta | None] = {}

    def __call__(self, utc: datetime) -> date:
        day = utc.date()
        if day not in self._offsets:
            first = datetime.combine(day, time(0), tzinfo=UTC)
            last = first + timedelta(days=1, microseconds=-1)
            offsets = {first.astimezone(self._tz).utcoffset(), last.astimezone(self._tz).utcoffset()}
            self._offsets[day] = offsets.pop() if len(offsets) == 1 else None
        offset = self._offsets[day]
        if offset is None:
            return utc.replace(tzinfo=UTC).astimezone(self._tz).date()
        return (utc + offset).date()


class WorkingDaySpans:
    """`WorkingCalendar.working_days_between` for many spans: one pass over the days, then O(1) each."""

    def __init__(self, calendar: WorkingCalendar, first: date, last: date) -> None:
        self._first = first
        self._cumulative = [0]
        d = first
        while d < last:
            d += timedelta(days=1)
            self._cumulative.append(self._cumulative[-1] + calendar.is_working_day(d))

    def between(self, start: date, end: date) -> int:
        """The working days in (start, end], as the calendar counts them."""
        return self._cumulative[(end - self._first).days] - self._cumulative[(start - self._first).days]
