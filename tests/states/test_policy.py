import hashlib
from datetime import date, time, timedelta

import pytest

from states.policy import (
    CalendarConfig,
    Policy,
    PolicyError,
    default_policy_text,
    load_default_policy,
    parse_policy,
)
from states.timescale import Timescale
from states.vocabulary import ROLES

VALID = """
[calendar]
timezone = "Europe/London"
bank_holidays = "england-and-wales"
closure_days = ["2018-12-27"]
close_of_business = "17:00"
start_of_business = "09:00"

[rules]
reopen_within = "10wd"
remind_iro_after = "5wd"
link_valid_after_due = "5wd"

[[stages]]
id = "first"
title = "First"
owner_role = "team_manager"
respond_within = "PT30S"
reminders = ["-PT10S", "0wd"]

[[stages]]
id = "last"
title = "Last"
owner_role = "iro"
"""


def wd(n: int) -> Timescale:
    return Timescale(working_days=n, duration=None, text=f"{n}wd")


def test_default_policy_is_the_central_bedfordshire_ladder() -> None:
    policy = load_default_policy()
    assert policy.stage_ids == (
        "quality_assurance",
        "team_manager",
        "head_of_corporate_parenting",
        "head_of_service",
        "assistant_director",
        "cafcass",
    )
    assert [stage.owner_role for stage in policy.stages] == [
        "team_manager",
        "team_manager",
        "head_of_corporate_parenting",
        "head_of_service",
        "assistant_director",
        "iro",
    ]
    assert policy.first_stage.title == "Quality Assurance (informal)"
    assert policy.last_stage.title == "Referral to CAFCASS"
    for stage in policy.stages[:-1]:
        assert stage.respond_within == wd(5)
        assert stage.reminders == (
            Timescale(working_days=-2, duration=None, text="-2wd"),
            Timescale(working_days=0, duration=None, text="0wd"),
        )
    assert policy.last_stage.respond_within is None
    assert policy.last_stage.reminders == ()


def test_default_policy_calendar_and_rules() -> None:
    policy = load_default_policy()
    assert policy.calendar == CalendarConfig(
        timezone="Europe/London",
        bank_holidays="england-and-wales",
        closure_days=(),
        close_of_business=time(17, 0),
        start_of_business=time(9, 0),
    )
    assert (policy.rules.reopen_within, policy.rules.remind_iro_after, policy.rules.link_valid_after_due) == (
        wd(10),
        wd(5),
        wd(5),
    )


def test_formal_stages_take_twenty_working_days() -> None:
    stages = load_default_policy().stages[1:-1]
    assert sum(stage.respond_within.working_days or 0 for stage in stages if stage.respond_within) == 20


def test_hash_is_of_the_exact_text() -> None:
    text = default_policy_text()
    policy = parse_policy(text)
    assert policy.text == text
    assert policy.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert parse_policy(text + "\n").sha256 != policy.sha256


def test_parses_a_custom_policy() -> None:
    policy = parse_policy(VALID)
    assert policy.calendar.closure_days == (date(2018, 12, 27),)
    first = policy.stage("first")
    assert first.respond_within == Timescale(working_days=None, duration=timedelta(seconds=30), text="PT30S")
    assert [r.duration for r in first.reminders] == [timedelta(seconds=-10), None]


def test_bank_holidays_none_and_toml_dates() -> None:
    text = VALID.replace('"england-and-wales"', '"none"').replace(
        '["2018-12-27"]', "[2018-12-28, 2018-12-27]"
    )
    calendar = parse_policy(text).calendar
    assert calendar.bank_holidays is None
    assert calendar.closure_days == (date(2018, 12, 27), date(2018, 12, 28))


def test_navigation() -> None:
    policy = load_default_policy()
    assert policy.index("head_of_service") == 3
    assert policy.stage("head_of_service").title == "Head of Service"
    with pytest.raises(KeyError):
        policy.stage("nope")
    with pytest.raises(KeyError):
        policy.index("nope")


def test_with_calendar_keeps_the_ladder_and_version() -> None:
    policy = load_default_policy()
    calendar = CalendarConfig("Europe/London", None, (date(2022, 9, 19),), time(16, 30), time(8, 30))
    changed = policy.with_calendar(calendar)
    assert changed.calendar == calendar
    assert (changed.stages, changed.rules, changed.sha256) == (policy.stages, policy.rules, policy.sha256)
    assert policy.calendar.closure_days == ()


def test_roles() -> None:
    assert "iro" in ROLES and "admin" in ROLES and len(ROLES) == 7


BAD_CASES = [
    ('timezone = "Europe/London"', 'timezone = "Mars/Olympus"', "calendar.timezone", "unknown time zone"),
    ('timezone = "Europe/London"', 'timezone = "../etc/passwd"', "calendar.timezone", "unknown time zone"),
    ('timezone = "Europe/London"', "timezone = 1", "calendar.timezone", "expected a string"),
    ('timezone = "Europe/London"\n', "", "calendar.timezone", "missing required key"),
    ('"england-and-wales"', '"scotland"', "calendar.bank_holidays", "england-and-wales, none"),
    ('["2018-12-27"]', '["27/12/2018"]', "calendar.closure_days[0]", "YYYY-MM-DD"),
    ('["2018-12-27"]', '["2018-12-27", "2018-02-30"]', "calendar.closure_days[1]", "YYYY-MM-DD"),
    ('["2018-12-27"]', '"2018-12-27"', "calendar.closure_days", "expected a list"),
    ('close_of_business = "17:00"', 'close_of_business = "5pm"', "calendar.close_of_business", "HH:MM"),
    ('close_of_business = "17:00"', 'close_of_business = "25:00"', "calendar.close_of_business", "HH:MM"),
    ('start_of_business = "09:00"', 'start_of_business = "9:00"', "calendar.start_of_business", "HH:MM"),
    ('start_of_business = "09:00"', 'start_of_business = "18:00"', "calendar.start_of_business", "earlier"),
    (
        'timezone = "Europe/London"',
        'timezone = "Europe/London"\nweekend = "sun"',
        "calendar.weekend",
        "unknown key",
    ),
    ('reopen_within = "10wd"', 'reopen_within = "10 days"', "rules.reopen_within", "expected working days"),
    ('reopen_within = "10wd"', 'reopen_within = "-1wd"', "rules.reopen_within", "negative"),
    ('remind_iro_after = "5wd"', 'remind_iro_after = "0wd"', "rules.remind_iro_after", "greater than zero"),
    ('remind_iro_after = "5wd"', 'remind_iro_after = "P1M"', "rules.remind_iro_after", "years and months"),
    ('link_valid_after_due = "5wd"\n', "", "rules.link_valid_after_due", "missing required key"),
    ('link_valid_after_due = "5wd"', 'link_valid_after_due = "5wd"\nx = 1', "rules.x", "unknown key"),
    ('id = "first"', 'id = "First stage"', "stages[0].id", "not a valid stage id"),
    ('id = "first"', 'id = "last"', "stages[1].id", "duplicate stage id 'last'"),
    ('id = "first"', "id = [1]", "stages[0].id", "expected a string, got list"),
    ('title = "First"\n', "", "stages[0].title", "missing required key"),
    ('title = "First"', 'title = "  "', "stages[0].title", "must not be empty"),
    (
        'owner_role = "team_manager"',
        'owner_role = "director"',
        "stages[0].owner_role",
        "unknown role 'director'",
    ),
    ('respond_within = "PT30S"\n', "", "stages[0].respond_within", "missing required key"),
    ('respond_within = "PT30S"', 'respond_within = "5"', "stages[0].respond_within", "expected working days"),
    ('respond_within = "PT30S"', 'respond_within = "-5wd"', "stages[0].respond_within", "negative"),
    ('"-PT10S", "0wd"', '"-2wd", "soon"', "stages[0].reminders[1]", "expected working days"),
    ('["-PT10S", "0wd"]', '"-2wd"', "stages[0].reminders", "expected a list"),
    (
        'owner_role = "iro"',
        'owner_role = "iro"\nrespond_within = "5wd"',
        "stages[1].respond_within",
        "last stage",
    ),
    ('owner_role = "iro"', 'owner_role = "iro"\nreminders = ["0wd"]', "stages[1].reminders", "no due date"),
    ('owner_role = "iro"', 'owner_role = "iro"\ncolour = "red"', "stages[1].colour", "unknown key"),
    ("[rules]", "[escalation]\n[rules]", "escalation", "unknown key"),
    ("[rules]", "stages = 3\n[rules]", "calendar.stages", "unknown key"),
    ("[[stages]]", "[stages]", "(file)", "invalid TOML"),
    ('timezone = "Europe/London"', 'timezone = "Europe/London', "(file)", "invalid TOML"),
]


@pytest.mark.parametrize(("old", "new", "key", "message"), BAD_CASES)
def test_errors_name_the_key(old: str, new: str, key: str, message: str) -> None:
    assert old in VALID
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(VALID.replace(old, new, 1))
    errors = excinfo.value.errors
    assert [k for k, _ in errors] == [key], errors
    assert message in errors[0][1]
    assert str(excinfo.value) == f"{key}: {errors[0][1]}"


def test_missing_sections() -> None:
    with pytest.raises(PolicyError) as excinfo:
        parse_policy('title = "x"\n')
    assert [key for key, _ in excinfo.value.errors] == ["title", "calendar", "rules", "stages"]


def test_stages_must_be_an_array_of_tables() -> None:
    text = 'stages = ["first", "last"]\n' + VALID[: VALID.index("[[stages]]")]
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(text)
    assert excinfo.value.errors == [("stages", "expected an array of tables ([[stages]])")]


def test_needs_two_stages() -> None:
    one_stage = (
        VALID[: VALID.index("[[stages]]")] + '[[stages]]\nid = "only"\ntitle = "Only"\nowner_role = "iro"\n'
    )
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(one_stage)
    assert excinfo.value.errors == [("stages", "at least 2 stages are needed, found 1")]


def test_collects_every_error() -> None:
    text = (
        VALID.replace('"Europe/London"', '"Nowhere"')
        .replace('remind_iro_after = "5wd"', 'remind_iro_after = "5"')
        .replace('owner_role = "team_manager"', 'owner_role = "boss"')
    )
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(text)
    assert [key for key, _ in excinfo.value.errors] == [
        "calendar.timezone",
        "rules.remind_iro_after",
        "stages[0].owner_role",
    ]
    assert str(excinfo.value).splitlines() == [f"{key}: {message}" for key, message in excinfo.value.errors]
    assert isinstance(excinfo.value, ValueError)


def test_policy_is_immutable() -> None:
    policy: Policy = load_default_policy()
    with pytest.raises(AttributeError):
        policy.text = ""  # type: ignore[misc]
