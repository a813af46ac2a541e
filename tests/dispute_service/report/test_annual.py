"""The annual report's figures, from disputes walked through the real use cases on a clock.

Every test runs on SQLite and on PostgreSQL. Expected figures come from what each test did, never from
the report's own queries.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.report.annual import (
    LocalDates,
    ReportingYear,
    WorkingDaySpans,
    sentence,
)
from dispute_service.report.formats import to_csv, to_svg
from dispute_service.stages import calendar_for
from dispute_service.transactions import annual_report
from states.machine import Request, Situation, machine_for
from states.policy import Policy
from states.vocabulary import CATEGORIES, State, Trigger
from tests.factories import ADMIN
from tests.report_checks import NONE_AT
from tests.seed import HOUR, OWNERS, Ladder, at, seed_years

Report = Callable[..., dict[str, Any]]


@pytest.fixture
def report(sessions: sessionmaker[Session], policy: Policy) -> Report:
    def make(year: int = 2017, start_month: int = 4) -> dict[str, Any]:
        return annual_report(sessions, policy, year, start_month=start_month).to_dict()

    return make


# --- the seed's year ------------------------------------------------------------------------------------


def test_the_seed_year_9_then_18_for_looked_after_children(
    ladder: Ladder, report: Report, policy: Policy
) -> None:
    seeded = seed_years(ladder)
    r = report(2017)

    assert r["period"] == {"start": "2017-04-01", "end": "2018-03-31", "label": "2017-18"}
    assert r["raised"] == {"this_year": 18, "previous_year": 9, "change": 9}
    assert r["by_case_type"] == {"looked_after": 18, "child_protection": 0, "care_leaver": 0}
    assert r["by_category"] == {c: seeded.categories[c] for c in CATEGORIES}
    # Most at Team Manager, some at Head of Corporate Parenting, a few reach Head of Service, none higher.
    expected = {**NONE_AT, "team_manager": 11, "head_of_corporate_parenting": 5, "head_of_service": 2}
    assert r["highest_stage"] == expected
    assert r["resolved_at_stage"] == expected
    assert r["escalations"] == {"automatic": 12, "manual": 15}
    assert r["responses"] == {"on_time": 30, "late": 3}
    assert (r["cafcass_referrals"], r["withdrawn"], r["open_at_year_end"]) == (0, 0, 0)
    calendar = calendar_for(policy.calendar)
    spans = [
        calendar.working_days_between(
            c.raised_at.astimezone(calendar.tz).date(), c.resolved_at.astimezone(calendar.tz).date()
        )
        for c in seeded.this
    ]
    assert r["median_working_days_to_close"] == statistics.median(spans)
    assert r["sentences"] == [
        "The number of escalations has increased this year to 18 for Looked After Children "
        "from 9 the previous year.",
        "The number of escalations has stayed the same this year at 0 for children subject to "
        "Child Protection Plans.",
        "The number of escalations has stayed the same this year at 0 for Care Leavers.",
    ]

    before = report(2016)
    assert before["raised"] == {"this_year": 9, "previous_year": 0, "change": 9}
    assert before["highest_stage"] == {
        **NONE_AT,
        "team_manager": 6,
        "head_of_corporate_parenting": 2,
        "head_of_service": 1,
    }
    assert before["escalations"] == {"automatic": 4, "manual": 9}
    assert before["responses"] == {"on_time": 17, "late": 1}


def test_the_sentences_are_worded_for_a_rise_a_fall_and_no_change() -> None:
    assert sentence("care_leaver", 4, 2) == (
        "The number of escalations has increased this year to 4 for Care Leavers from 2 the previous year."
    )
    assert sentence("child_protection", 1, 3) == (
        "The number of escalations has decreased this year to 1 for children subject to Child Protection "
        "Plans from 3 the previous year."
    )
    assert sentence("looked_after", 7, 7) == (
        "The number of escalations has stayed the same this year at 7 for Looked After Children."
    )


def test_one_sentence_per_case_type_from_each_years_own_figures(ladder: Ladder, report: Report) -> None:
    for day in (3, 4, 5):
        ladder.raise_(at(2016, 6, day, 10), case_type="child_protection")
    ladder.raise_(at(2016, 6, 6, 10))
    ladder.raise_(at(2017, 6, 6, 10), case_type="child_protection")
    ladder.raise_(at(2017, 6, 7, 10))
    ladder.raise_(at(2017, 6, 8, 10), case_type="care_leaver")
    r = report(2017)
    assert r["by_case_type"] == {"looked_after": 1, "child_protection": 1, "care_leaver": 1}
    assert r["sentences"] == [
        sentence("looked_after", 1, 1),
        sentence("child_protection", 1, 3),
        sentence("care_leaver", 1, 0),
    ]
    assert "stayed the same this year at 1 for Looked After" in r["sentences"][0]
    assert (
        "decreased this year to 1 for children subject to Child Protection Plans from 3" in r["sentences"][1]
    )
    assert "increased this year to 1 for Care Leavers from 0" in r["sentences"][2]


# --- boundaries -----------------------------------------------------------------------------------------


def test_raised_at_half_past_midnight_bst_on_1_april_counts_in_the_new_year(
    ladder: Ladder, report: Report
) -> None:
    ladder.raise_(at(2018, 3, 31, 22, 30))  # 23:30 BST on Saturday 31 March 2018: 2017-18
    ladder.raise_(at(2018, 3, 31, 23, 30))  # 00:30 BST on Sunday 1 April 2018: 2018-19
    assert report(2017)["raised"]["this_year"] == 1
    assert report(2018)["raised"] == {"this_year": 1, "previous_year": 1, "change": 0}
    # Both were open when 2017-18 ended; only the first had been raised by then.
    assert report(2017)["open_at_year_end"] == 1
    assert report(2018)["open_at_year_end"] == 2


def test_a_dispute_closed_after_the_years_end_is_open_at_the_years_end(
    ladder: Ladder, report: Report
) -> None:
    dispute_id = ladder.raise_(at(2018, 3, 20, 10))
    ladder.act(dispute_id, "resolve", at(2018, 3, 31, 23, 30))  # 00:30 BST on 1 April
    r = report(2017)
    assert r["open_at_year_end"] == 1
    assert r["resolved_at_stage"] == NONE_AT
    assert r["median_working_days_to_close"] is None
    assert r["highest_stage"] == {**NONE_AT, "quality_assurance": 1}
    assert report(2018)["open_at_year_end"] == 0


def test_resolved_at_23_30_bst_on_31_march_is_resolved_within_the_year(
    ladder: Ladder, report: Report
) -> None:
    dispute_id = ladder.raise_(at(2018, 3, 20, 10))
    ladder.act(dispute_id, "resolve", at(2018, 3, 31, 22, 30))
    r = report(2017)
    assert r["open_at_year_end"] == 0
    assert r["resolved_at_stage"] == {**NONE_AT, "quality_assurance": 1}
    # Tuesday 20 March to Saturday 31 March 2018: Good Friday (30 March) is a bank holiday.
    assert r["median_working_days_to_close"] == 7


def test_open_at_the_years_end_counts_every_open_dispute_whenever_raised(
    ladder: Ladder, report: Report
) -> None:
    old = ladder.raise_(at(2016, 5, 2, 10))
    ladder.act(old, "hold", at(2016, 5, 3, 10), reason="Court hearing", review_on=date(2018, 6, 1))
    ladder.raise_(at(2017, 9, 1, 10))
    ended = ladder.raise_(at(2017, 9, 4, 10))
    ladder.act(ended, "withdraw", at(2017, 9, 5, 10))
    r = report(2017)
    assert r["open_at_year_end"] == 2
    assert r["raised"]["this_year"] == 2
    assert r["withdrawn"] == 1


def test_a_reporting_year_starting_in_january_uses_winter_time(
    ladder: Ladder, report: Report, policy: Policy
) -> None:
    ladder.raise_(at(2017, 12, 31, 23, 30))  # GMT: still 2017
    ladder.raise_(at(2018, 1, 1, 0, 0))
    r = report(2017, start_month=1)
    assert r["period"] == {"start": "2017-01-01", "end": "2017-12-31", "label": "2017"}
    assert r["raised"]["this_year"] == 1
    assert report(2018, start_month=1)["raised"] == {"this_year": 1, "previous_year": 1, "change": 0}


def test_the_reporting_year_is_decided_in_london_time(policy: Policy) -> None:
    tz = calendar_for(policy.calendar).tz
    year = ReportingYear(2017, 4, tz)
    assert year.start == at(2017, 3, 31, 23, 0)  # midnight BST
    assert year.end == at(2018, 3, 31, 23, 0)
    assert (year.first_day, year.last_day, year.label) == (date(2017, 4, 1), date(2018, 3, 31), "2017-18")
    assert year.previous.label == "2016-17"
    assert ReportingYear(1999, 4, tz).label == "1999-00"
    assert ReportingYear(2017, 9, tz).start == at(2017, 8, 31, 23, 0)


# --- scope of each measure -------------------------------------------------------------------------------


def test_escalations_count_stage_moves_dated_in_the_year_whoever_raised_the_dispute(
    ladder: Ladder, report: Report
) -> None:
    # Raised in 2016-17, escalated in both years: each move counts in the year it happened.
    old = ladder.raise_(at(2017, 3, 20, 10))
    ladder.act(old, "escalate", at(2017, 3, 27, 10))
    d = ladder.act(old, "escalate", at(2017, 4, 3, 10))
    ladder.timeout(d)
    # A reopen moves up a level: the IRO was not satisfied, so it counts as a manual escalation.
    new = ladder.raise_(at(2017, 5, 1, 10))
    ladder.act(new, "resolve", at(2017, 5, 2, 10))
    ladder.act(new, "reopen", at(2017, 5, 3, 10))
    # Alongside the ladder, a CAFCASS referral moves nothing, and a referral is not an escalation.
    ladder.act(new, "refer_to_cafcass", at(2017, 5, 4, 10), alongside=True)
    assert report(2016)["escalations"] == {"automatic": 0, "manual": 1}
    r = report(2017)
    assert r["escalations"] == {"automatic": 1, "manual": 2}
    assert r["raised"]["this_year"] == 1
    assert r["cafcass_referrals"] == 1
    assert r["highest_stage"] == {**NONE_AT, "team_manager": 1}


def test_responses_on_time_and_late_and_none_given(ladder: Ladder, report: Report) -> None:
    on_time = ladder.raise_(at(2017, 6, 5, 10))
    ladder.respond(on_time, at(2017, 6, 6, 10), "quality_assurance")
    late = ladder.raise_(at(2017, 6, 5, 10))
    d = ladder.act(late, "acknowledge", at(2017, 6, 5, 11), actor=OWNERS["quality_assurance"])
    assert d.due_at is not None
    ladder.respond(late, d.due_at + HOUR, "quality_assurance")
    ladder.raise_(at(2017, 6, 5, 10))  # never answered: counts as neither
    r = report(2017)
    assert r["responses"] == {"on_time": 1, "late": 1}


def test_referrals_withdrawals_and_where_disputes_ended(ladder: Ladder, report: Report) -> None:
    referred = ladder.raise_(at(2017, 7, 3, 10))
    ladder.act(referred, "refer_to_cafcass", at(2017, 7, 4, 10))
    ladder.act(referred, "close", at(2017, 8, 1, 10))
    withdrawn = ladder.raise_(at(2017, 7, 3, 10))
    ladder.act(withdrawn, "escalate", at(2017, 7, 4, 10))
    ladder.act(withdrawn, "withdraw", at(2017, 7, 5, 10))
    # A care leaver's dispute cannot go to CAFCASS; it still climbs to the top of the ladder.
    top = ladder.raise_(at(2017, 7, 3, 10), case_type="care_leaver")
    ladder.act(top, "escalate", at(2017, 7, 4, 10), to_stage="cafcass")
    ladder.act(top, "resolve", at(2017, 7, 5, 10))
    r = report(2017)
    assert r["cafcass_referrals"] == 1
    assert r["withdrawn"] == 1
    assert r["highest_stage"] == {**NONE_AT, "team_manager": 1, "cafcass": 2}
    assert r["resolved_at_stage"] == {**NONE_AT, "cafcass": 1}
    assert r["open_at_year_end"] == 0


def test_the_median_counts_working_days_and_takes_the_middle_of_an_even_count(
    ladder: Ladder, report: Report
) -> None:
    spans = [
        (at(2017, 6, 5, 10), at(2017, 6, 7, 10)),  # Monday to Wednesday: 2
        (at(2017, 6, 5, 10), at(2017, 6, 12, 10)),  # a week: 5
        # Friday 22 December 2017 to Wednesday 3 January 2018, less Christmas, Boxing Day, New Year: 5
        (at(2017, 12, 22, 10), at(2018, 1, 3, 10)),
        (at(2017, 6, 5, 10), at(2017, 6, 19, 10)),  # two weeks: 10
    ]
    for raised_at, resolved_at in spans:
        ladder.act(ladder.raise_(raised_at), "resolve", resolved_at)
    assert report(2017)["median_working_days_to_close"] == 5
    ladder.act(ladder.raise_(at(2017, 6, 5, 10)), "resolve", at(2017, 6, 13, 10))  # 6
    assert report(2017)["median_working_days_to_close"] == 5


def test_the_median_of_an_even_count_can_be_a_half(ladder: Ladder, report: Report) -> None:
    for resolved_on in (7, 8):  # 2 and 3 working days after Monday 5 June 2017
        ladder.act(ladder.raise_(at(2017, 6, 5, 10)), "resolve", at(2017, 6, resolved_on, 10))
    assert report(2017)["median_working_days_to_close"] == 2.5


def test_the_stage_never_goes_down_so_the_stage_at_the_years_end_is_the_highest_reached(
    policy: Policy,
) -> None:
    """The report reads the highest stage reached from where a dispute stood; that rests on this."""
    machine = machine_for(policy)
    far = at(2099, 1, 1)
    moves = 0
    for stage in policy.stage_ids:
        for state in State:
            for referred in (False, True):
                situation = Situation(stage, state, "looked_after", reopen_until=far, referred=referred)
                for trigger in Trigger:
                    for to_stage in (None, *policy.stage_ids):
                        for alongside in (False, True):
                            request = Request(now=at(2018, 1, 1), to_stage=to_stage, alongside=alongside)
                            if machine.may(trigger, situation, request):
                                target = machine.fire(trigger, situation, request)
                                assert policy.index(target.stage) >= policy.index(stage), (trigger, stage)
                                moves += target.stage != stage
    assert moves > 0


def test_local_dates_agree_with_zoneinfo_across_the_clock_changes(policy: Policy) -> None:
    tz = calendar_for(policy.calendar).tz
    local = LocalDates(tz)
    moments = [
        at(2018, 3, 24, 23, 30),
        at(2018, 3, 25, 0, 59),
        at(2018, 3, 25, 1, 0),  # clocks go forward at 01:00 UTC
        at(2018, 3, 25, 23, 0),  # midnight BST
        at(2018, 3, 31, 22, 59),
        at(2018, 3, 31, 23, 30),
        at(2018, 10, 28, 0, 30),
        at(2018, 10, 28, 0, 59),
        at(2018, 10, 28, 1, 0),  # clocks go back at 01:00 UTC
        at(2018, 10, 28, 23, 30),
        at(2018, 12, 31, 23, 59),
    ]
    for moment in moments:
        naive = moment.replace(tzinfo=None)
        assert local(naive) == moment.astimezone(tz).date(), moment


def test_working_day_spans_agree_with_the_calendar(policy: Policy) -> None:
    calendar = calendar_for(policy.calendar)
    first, last = date(2017, 12, 1), date(2018, 6, 1)
    spans = WorkingDaySpans(calendar, first, last)
    days = [first + timedelta(days=n) for n in range(0, (last - first).days + 1, 3)]
    for start in days:
        for end in days:
            if start <= end:
                assert spans.between(start, end) == calendar.working_days_between(start, end), (start, end)


def statements_run(engine: Engine, run: Callable[[], object]) -> list[str]:
    """The SQL statements `run` sends to the database, in order."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def test_report_reads_no_further_than_it_needs(ladder: Ladder, report: Report, engine: Engine) -> None:
    """The report is a fixed set of aggregate queries: as many statements for a year far from any data as
    for a full year, however many disputes there are, and none per dispute. A year far from any data gives
    zeros everywhere, no median, and the sentences still read well."""
    ladder.raise_(at(2017, 6, 1, 10))
    one_dispute = statements_run(engine, lambda: report(1990))
    r = report(1990)
    assert r["raised"] == {"this_year": 0, "previous_year": 0, "change": 0}
    assert r["median_working_days_to_close"] is None
    assert r["open_at_year_end"] == 0
    assert all("stayed the same this year at 0" in s for s in r["sentences"])

    seed_years(ladder)  # 27 more disputes, in 2016-17 and 2017-18, with their escalations and responses
    assert statements_run(engine, lambda: report(1990)) == one_dispute
    full_year = statements_run(engine, lambda: report(2017))
    assert report(2017)["raised"]["this_year"] == 19  # the seed's 18 and the first
    assert len(full_year) == len(one_dispute)
    # Each figure's query, once: two for the corrections (this year and last, none made since), two per
    # cohort, and one each for the categories, the escalations, the reopens that moved up, the responses,
    # the referrals, the disputes open at the end, the median, the resolved, the partner disputes'
    # figures, and the organisations' names; PostgreSQL also turns off JIT for the transaction.
    selects = [s for s in full_year if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) == 16, "\n\n".join(selects)


# --- reproducibility -------------------------------------------------------------------------------------


def test_later_activity_changes_nothing_in_a_past_year_byte_for_byte(
    ladder: Ladder, sessions: sessionmaker[Session], policy: Policy
) -> None:
    straddling = ladder.raise_(at(2018, 3, 26, 10), categories=["contact"])
    ladder.act(straddling, "escalate", at(2018, 3, 27, 10))
    on_hold = ladder.raise_(at(2016, 11, 1, 10))
    ladder.act(on_hold, "hold", at(2016, 11, 2, 10), reason="Court hearing", review_on=date(2018, 9, 1))
    reopened = ladder.raise_(at(2018, 3, 1, 10), case_type="child_protection")
    ladder.respond(reopened, at(2018, 3, 2, 10), "quality_assurance")
    ladder.act(reopened, "resolve", at(2018, 3, 28, 10))
    corrected = ladder.raise_(at(2017, 10, 2, 10), case_type="care_leaver", categories=["health"])
    ladder.act(corrected, "withdraw", at(2017, 10, 3, 10))
    seed_years(ladder)

    def snapshot() -> tuple[dict[str, Any], str, str]:
        result = annual_report(sessions, policy, 2017)
        return result.to_dict(), to_csv(result), to_svg(result)

    before = snapshot()
    r = before[0]
    assert r["raised"]["this_year"] == 21
    assert r["open_at_year_end"] == 2  # the straddling dispute and the one on hold since 2016
    assert r["resolved_at_stage"]["quality_assurance"] == 1  # resolved on 28 March
    assert r["by_case_type"] == {"looked_after": 19, "child_protection": 1, "care_leaver": 1}
    assert r["withdrawn"] == 1

    # After the year's end: escalations and a timeout, a resolution, a withdrawal, a reopen of the March
    # resolution and a climb, corrections of the case type and categories, a reassigned IRO.
    d = ladder.act(straddling, "escalate", at(2018, 4, 3, 10))
    ladder.timeout(d)
    ladder.act(straddling, "resolve", at(2018, 5, 1, 10))
    ladder.act(on_hold, "resume", at(2018, 4, 9, 10))
    ladder.act(on_hold, "withdraw", at(2018, 4, 10, 10))
    ladder.act(reopened, "reopen", at(2018, 4, 4, 10))
    ladder.respond(reopened, at(2018, 4, 5, 10), "team_manager")
    ladder.act(reopened, "escalate", at(2018, 4, 6, 10))
    ladder.act(corrected, "amend", at(2018, 6, 1, 10), case_type="looked_after")
    ladder.act(corrected, "amend", at(2018, 6, 2, 10), categories=["education", "contact"])
    ladder.act(corrected, "amend", at(2018, 6, 3, 10), case_type="child_protection")
    ladder.act(reopened, "reassign_iro", at(2018, 6, 4, 10), ADMIN, iro_email="iro2@example.gov.uk")
    ladder.raise_(at(2018, 4, 2, 10))

    assert snapshot() == before
    # The later year sees the later activity.
    later = annual_report(sessions, policy, 2018).to_dict()
    assert later["raised"] == {"this_year": 1, "previous_year": 21, "change": -20}
    assert later["escalations"] == {"automatic": 1, "manual": 3}
    assert later["open_at_year_end"] == 2  # the reopened dispute, and the one raised in April
