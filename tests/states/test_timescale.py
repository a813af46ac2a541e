from datetime import timedelta

import pytest

from states.timescale import Timescale, parse_timescale


@pytest.mark.parametrize(
    ("text", "working_days"),
    [("5wd", 5), ("0wd", 0), ("10wd", 10), ("20wd", 20)],
)
def test_working_days(text: str, working_days: int) -> None:
    timescale = parse_timescale(text)
    assert timescale == Timescale(working_days=working_days, duration=None, text=text)
    assert timescale.is_working_days
    assert str(timescale) == text


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("PT30S", timedelta(seconds=30)),
        ("P3D", timedelta(days=3)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("PT1M", timedelta(minutes=1)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P1W", timedelta(days=7)),
        ("PT0.5S", timedelta(milliseconds=500)),
    ],
)
def test_iso_durations_are_exact(text: str, duration: timedelta) -> None:
    timescale = parse_timescale(text)
    assert timescale == Timescale(working_days=None, duration=duration, text=text)
    assert not timescale.is_working_days


@pytest.mark.parametrize(
    ("text", "working_days", "duration"),
    [
        ("-2wd", -2, None),
        ("-PT10S", None, timedelta(seconds=-10)),
        ("-P1D", None, timedelta(days=-1)),
    ],
)
def test_negative_only_when_allowed(text: str, working_days: int | None, duration: timedelta | None) -> None:
    timescale = parse_timescale(text, allow_negative=True)
    assert (timescale.working_days, timescale.duration) == (working_days, duration)
    assert timescale.is_negative
    with pytest.raises(ValueError, match="negative"):
        parse_timescale(text)


@pytest.mark.parametrize(
    "text",
    [
        "5",
        "5 days",
        "5d",
        "5WD",
        " 5wd",
        "wd",
        "P",
        "PT",
        "P1DT",
        "pt30s",
        "PT30S ",
        "P-1D",
        "+PT1S",
        "30S",
        "",
    ],
)
def test_rejects_other_forms(text: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_timescale(text, allow_negative=True)
    assert "expected working days like '5wd' or an ISO-8601 duration like 'PT30S' or 'P3D'" in str(
        excinfo.value
    )


@pytest.mark.parametrize("text", ["P1Y", "P1M", "P1Y2M3D", "-P2M", "P1MT1H"])
def test_rejects_years_and_months(text: str) -> None:
    with pytest.raises(ValueError, match="years and months"):
        parse_timescale(text, allow_negative=True)


def test_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="got int"):
        parse_timescale(5)  # type: ignore[arg-type]


def test_exactly_one_of_working_days_and_duration() -> None:
    with pytest.raises(ValueError):
        Timescale(working_days=5, duration=timedelta(days=5), text="5wd")
    with pytest.raises(ValueError):
        Timescale(working_days=None, duration=None, text="")
