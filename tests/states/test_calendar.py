import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from states.calendar import Deadline, WorkingCalendar, format_day, format_due_words
from states.policy import CalendarConfig, load_default_policy
from states.timescale import parse_timescale

LONDON = ZoneInfo("Europe/London")
DEFAULT = load_default_policy().calendar


def calendar(*closure_days: date, bank_holidays: str | None = "england-and-wales") -> WorkingCalendar:
    return WorkingCalendar(
        dataclasses.replace(DEFAULT, closure_days=closure_days, bank_holidays=bank_holidays)
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def test_platinum_jubilee_week_in_summer_time() -> None:
    deadline = calendar().deadline(london(2022, 6, 1, 10, 0), parse_timescale("5wd"))
    assert deadline == Deadline(
        due_at=utc(2022, 6, 10, 16, 0),  # 17:00 BST
        escalate_at=utc(2022, 6, 13, 8, 0),  # 09:00 BST
        skipped=(
            (date(2022, 6, 2), "bank holiday: Spring Bank Holiday"),
            (date(2022, 6, 3), "bank holiday: Platinum Jubilee of Elizabeth II"),
            (date(2022, 6, 4), "weekend"),
            (date(2022, 6, 5), "weekend"),
            (date(2022, 6, 11), "weekend"),
            (date(2022, 6, 12), "weekend"),
        ),
    )
    assert deadline.due_at.tzinfo is UTC and deadline.escalate_at.tzinfo is UTC


def test_explain_due() -> None:
    lines = calendar().explain_due(utc(2022, 6, 1, 9, 0), parse_timescale("5wd"))
    assert lines == [
        "start:      Wednesday 1 June 2022 10:00 (Europe/London)",
        "due:        17:00 Friday 10 June 2022",
        "escalation: 09:00 Monday 13 June 2022",
        "skipped:",
        "  Thursday 2 June 2022: bank holiday: Spring Bank Holiday",
        "  Friday 3 June 2022: bank holiday: Platinum Jubilee of Elizabeth II",
        "  Saturday 4 June 2022: weekend",
        "  Sunday 5 June 2022: weekend",
        "  Saturday 11 June 2022: weekend",
        "  Sunday 12 June 2022: weekend",
    ]


def test_explain_due_for_a_duration_has_no_skipped_days() -> None:
    lines = calendar().explain_due(london(2022, 6, 3, 10, 0), parse_timescale("PT30S"))
    assert lines == [
        "start:      Friday 3 June 2022 10:00 (Europe/London)",
        "due:        10:00:30 Friday 3 June 2022",
        "escalation: 10:00:30 Friday 3 June 2022",
    ]


def test_explain_due_with_nothing_skipped() -> None:
    lines = calendar().explain_due(london(2022, 6, 6, 10, 0), parse_timescale("2wd"))
    assert lines[1:] == [
        "due:        17:00 Wednesday 8 June 2022",
        "escalation: 09:00 Thursday 9 June 2022",
        "skipped:    none",
    ]


def test_christmas_2017_in_winter_time() -> None:
    deadline = calendar().deadline(utc(2017, 12, 22, 10, 0), parse_timescale("5wd"))
    assert deadline.due_at == utc(2018, 1, 3, 17, 0)
    assert deadline.escalate_at == utc(2018, 1, 4, 9, 0)
    assert [day for day, reason in deadline.skipped if reason.startswith("bank holiday")] == [
        date(2017, 12, 25),
        date(2017, 12, 26),
        date(2018, 1, 1),
    ]


def test_chained_escalations_up_the_ladder() -> None:
    cal = calendar()
    five = parse_timescale("5wd")
    escalations = []
    at = utc(2017, 12, 22, 10, 0)
    for _ in range(5):
        at = cal.deadline(at, five).escalate_at
        escalations.append(at)
    assert escalations == [
        utc(2018, 1, 4, 9, 0),
        utc(2018, 1, 12, 9, 0),
        utc(2018, 1, 22, 9, 0),
        utc(2018, 1, 30, 9, 0),
        utc(2018, 2, 7, 9, 0),
    ]


def test_closure_days_move_the_due_date() -> None:
    start = london(2018, 12, 21, 10, 0)
    assert calendar().deadline(start, parse_timescale("5wd")).due_at == utc(2019, 1, 2, 17, 0)
    closures = (date(2018, 12, 27), date(2018, 12, 28), date(2018, 12, 31))
    deadline = calendar(*closures).deadline(start, parse_timescale("5wd"))
    assert deadline.due_at == utc(2019, 1, 7, 17, 0)
    assert deadline.escalate_at == utc(2019, 1, 8, 9, 0)
    assert [day for day, reason in deadline.skipped if reason == "closure day"] == list(closures)


def test_closure_day_moves_the_escalation() -> None:
    deadline = calendar(date(2022, 6, 13)).deadline(london(2022, 6, 1, 10, 0), parse_timescale("5wd"))
    assert deadline.due_at == utc(2022, 6, 10, 16, 0)
    assert deadline.escalate_at == utc(2022, 6, 14, 8, 0)
    assert deadline.skipped[-1] == (date(2022, 6, 13), "closure day")


def test_without_bank_holidays() -> None:
    cal = calendar(bank_holidays=None)
    assert cal.is_working_day(date(2017, 12, 25))
    assert cal.deadline(utc(2017, 12, 22, 10, 0), parse_timescale("5wd")).due_at == utc(2017, 12, 29, 17, 0)


def test_start_date_is_taken_in_the_calendar_time_zone() -> None:
    # 23:30 UTC on Thursday 9 June is already Friday 10 June in London.
    deadline = calendar().deadline(utc(2022, 6, 9, 23, 30), parse_timescale("5wd"))
    assert deadline.due_at == utc(2022, 6, 17, 16, 0)


@pytest.mark.parametrize(
    ("start", "due_at", "escalate_at"),
    [
        (london(2022, 6, 6, 10, 0), utc(2022, 6, 6, 16, 0), utc(2022, 6, 7, 8, 0)),
        (london(2022, 6, 4, 10, 0), utc(2022, 6, 6, 16, 0), utc(2022, 6, 7, 8, 0)),
        (london(2022, 6, 1, 10, 0), utc(2022, 6, 1, 16, 0), utc(2022, 6, 6, 8, 0)),
    ],
)
def test_zero_working_days(start: datetime, due_at: datetime, escalate_at: datetime) -> None:
    deadline = calendar().deadline(start, parse_timescale("0wd"))
    assert (deadline.due_at, deadline.escalate_at) == (due_at, escalate_at)


@pytest.mark.parametrize(
    ("text", "due_at"),
    [
        ("PT30S", utc(2022, 6, 4, 9, 0, 30)),
        ("PT1H30M", utc(2022, 6, 4, 10, 30)),
        ("P3D", utc(2022, 6, 7, 9, 0)),
    ],
)
def test_durations_are_exact_and_ignore_working_days(text: str, due_at: datetime) -> None:
    deadline = calendar().deadline(london(2022, 6, 4, 10, 0), parse_timescale(text))
    assert deadline == Deadline(due_at=due_at, escalate_at=due_at, skipped=())


def test_durations_are_exact_across_a_clock_change() -> None:
    # Clocks went forward at 01:00 UTC on 27 March 2022: one day later is 13:00 BST, not 12:00.
    deadline = calendar().deadline(london(2022, 3, 26, 12, 0), parse_timescale("P1D"))
    assert deadline.due_at == utc(2022, 3, 27, 12, 0)


def test_deadline_rejects_naive_and_negative() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar().deadline(datetime(2022, 6, 1, 10, 0), parse_timescale("5wd"))
    with pytest.raises(ValueError, match="before its start"):
        calendar().deadline(utc(2022, 6, 1), parse_timescale("-1wd", allow_negative=True))


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        (date(2022, 6, 1), None),
        (date(2022, 6, 4), "weekend"),
        (date(2022, 9, 19), "bank holiday: State Funeral of Queen Elizabeth II"),
        (date(2026, 12, 28), "bank holiday: Boxing Day (observed)"),
        (date(2099, 12, 25), "bank holiday: Christmas Day"),
        (date(2018, 12, 27), "closure day"),
    ],
)
def test_non_working_reason(day: date, reason: str | None) -> None:
    cal = calendar(date(2018, 12, 27))
    assert cal.non_working_reason(day) == reason
    assert cal.is_working_day(day) is (reason is None)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2022, 6, 1), 1, date(2022, 6, 6)),
        (date(2022, 6, 1), 5, date(2022, 6, 10)),
        (date(2022, 6, 6), -1, date(2022, 6, 1)),
        (date(2022, 6, 10), -2, date(2022, 6, 8)),
        (date(2022, 6, 1), 0, date(2022, 6, 1)),
        (date(2022, 6, 2), 0, date(2022, 6, 6)),
        (date(2026, 12, 21), 5, date(2026, 12, 30)),
        (date(2099, 12, 24), 1, date(2099, 12, 29)),
    ],
)
def test_add_working_days(start: date, n: int, expected: date) -> None:
    assert calendar().add_working_days(start, n) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2022, 6, 1), date(2022, 6, 10), 5),
        (date(2022, 6, 1), date(2022, 6, 1), 0),
        (date(2022, 6, 10), date(2022, 6, 1), 0),
        (date(2022, 6, 3), date(2022, 6, 6), 1),
        (date(2017, 12, 22), date(2018, 1, 3), 5),
        (date(2022, 6, 5), date(2022, 6, 6), 1),
    ],
)
def test_working_days_between(start: date, end: date, expected: int) -> None:
    assert calendar().working_days_between(start, end) == expected


def test_next_working_moment() -> None:
    cal = calendar(date(2022, 6, 13))
    working = london(2022, 6, 14, 7, 0)
    assert cal.next_working_moment(working) is working
    assert cal.next_working_moment(utc(2022, 6, 13, 8, 0)) == utc(2022, 6, 14, 8, 0)
    assert cal.next_working_moment(utc(2022, 6, 11, 8, 0)) == utc(2022, 6, 14, 8, 0)
    assert cal.next_working_moment(utc(2017, 12, 25, 9, 0)) == utc(2017, 12, 27, 9, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-2wd", utc(2022, 6, 8, 8, 0)),
        ("0wd", utc(2022, 6, 10, 8, 0)),
        ("1wd", utc(2022, 6, 13, 8, 0)),
        ("-PT10S", utc(2022, 6, 10, 15, 59, 50)),
        ("P1D", utc(2022, 6, 11, 16, 0)),
    ],
)
def test_shift_for_reminders(text: str, expected: datetime) -> None:
    due_at = utc(2022, 6, 10, 16, 0)
    assert calendar().shift(due_at, parse_timescale(text, allow_negative=True)) == expected


def test_reminder_two_working_days_before_skips_bank_holidays() -> None:
    due_at = utc(2018, 1, 3, 17, 0)
    assert calendar().shift(due_at, parse_timescale("-2wd", allow_negative=True)) == utc(2017, 12, 29, 9, 0)


@pytest.mark.parametrize(
    ("at", "n", "expected"),
    [
        (utc(2017, 12, 22, 10, 0), 5, utc(2018, 1, 3, 10, 0)),
        # Friday 10:00 GMT plus one working day is Monday 10:00 BST, after the clocks went forward.
        (utc(2022, 3, 25, 10, 0), 1, utc(2022, 3, 28, 9, 0)),
        (utc(2022, 6, 10, 16, 0), -3, utc(2022, 6, 7, 16, 0)),
    ],
)
def test_add_working_days_to_keeps_the_local_time(at: datetime, n: int, expected: datetime) -> None:
    assert calendar().add_working_days_to(at, n) == expected


@pytest.mark.parametrize(
    ("at", "words"),
    [
        (utc(2018, 1, 3, 17, 0), "5pm on Wednesday 3 January 2018"),
        (utc(2022, 6, 10, 16, 30), "5:30pm on Friday 10 June 2022"),
        (utc(2022, 6, 13, 8, 5), "9:05am on Monday 13 June 2022"),
        (utc(2022, 6, 12, 23, 0), "12am on Monday 13 June 2022"),
        (utc(2022, 6, 13, 11, 0), "12pm on Monday 13 June 2022"),
    ],
)
def test_format_due_words(at: datetime, words: str) -> None:
    assert format_due_words(at, LONDON) == words


def test_format_day() -> None:
    assert format_day(date(2018, 1, 3)) == "Wednesday 3 January 2018"


def test_custom_business_hours() -> None:
    config = CalendarConfig("Europe/London", "england-and-wales", (), time(16, 30), time(8, 30))
    deadline = WorkingCalendar(config).deadline(utc(2018, 1, 2, 12, 0), parse_timescale("1wd"))
    assert (deadline.due_at, deadline.escalate_at) == (utc(2018, 1, 3, 16, 30), utc(2018, 1, 4, 8, 30))
    assert WorkingCalendar(config).tz == LONDON
    assert deadline.due_at - deadline.escalate_at == -timedelta(hours=16)
