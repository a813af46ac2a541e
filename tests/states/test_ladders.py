"""The partner ladders in the policy file: [[ladders]] beside the council's own [[stages]]."""

from datetime import date, time

import pytest

from states.policy import (
    CalendarConfig,
    Ladder,
    LadderStage,
    PolicyError,
    load_default_policy,
    parse_policy,
)
from states.timescale import Timescale
from tests.states.test_policy import VALID

LADDERS = """
[[ladders]]
id = "health"
title = "Health"
organisation_kind = "partner"
end = "iro_decision"

[[ladders.stages]]
id = "nurse"
title = "Nurse"
owner = "named"
respond_within = "5wd"
reminders = ["-2wd", "0wd"]

[[ladders.stages]]
id = "doctor"
title = "Doctor"
owner_role = "head_of_service"
respond_within = "PT1H"

[[ladders]]
id = "county"
title = "County"
organisation_kind = "other_authority"
end = "iro_decision"

[[ladders.stages]]
id = "county_manager"
title = "County manager"
owner = "named"
respond_within = "5wd"
"""

WITH_LADDERS = VALID + LADDERS

FIVE_WORKING_DAYS = Timescale(working_days=5, duration=None, text="5wd")
REMINDERS = (
    Timescale(working_days=-2, duration=None, text="-2wd"),
    Timescale(working_days=0, duration=None, text="0wd"),
)


def test_default_policy_ships_two_example_ladders_after_the_councils_own() -> None:
    policy = load_default_policy()
    assert [(ladder.id, ladder.title, ladder.organisation_kind, ladder.end) for ladder in policy.ladders] == [
        ("health", "NHS partners", "partner", "iro_decision"),
        ("other_authority", "Another local authority", "other_authority", "iro_decision"),
    ]
    health, other = policy.ladders
    assert [(stage.id, stage.title) for stage in health.stages] == [
        ("designated_nurse", "Designated Nurse for Looked After Children"),
        ("designated_doctor", "Designated Doctor or Head of Safeguarding"),
        ("icb_director_of_nursing", "ICB Director of Nursing"),
    ]
    assert [(stage.id, stage.title) for stage in other.stages] == [
        ("their_team_manager", "Team Manager"),
        ("their_head_of_service", "Head of Service"),
        ("their_director", "Director"),
    ]
    for stage in (*health.stages, *other.stages):
        assert isinstance(stage, LadderStage)
        assert stage.is_named and stage.owner_role is None
        assert stage.respond_within == FIVE_WORKING_DAYS
        assert stage.reminders == REMINDERS


def test_default_policys_own_ladder_is_unchanged_by_the_ladders() -> None:
    policy = load_default_policy()
    assert len(policy.stages) == 6
    assert policy.last_stage.id == "cafcass"
    # The own ladder comes first in the file, so edits of its first stages' text still find them there.
    text = policy.text
    assert text.index("[[stages]]") < text.index("[[ladders]]")
    assert text.rindex("[[stages]]") < text.index("[[ladders]]")


def test_every_stage_id_in_the_default_policy_is_unique() -> None:
    ids = [stage_id for ladder in load_default_policy().all_ladders for stage_id in ladder.stage_ids]
    assert len(ids) == len(set(ids)) == 12


def test_the_councils_own_ladder_is_own() -> None:
    policy = load_default_policy()
    own = policy.ladder("own")
    assert own == policy.own_ladder == policy.all_ladders[0]
    assert own == Ladder(
        id="own", title="The council's own ladder", organisation_kind=None, end=None, stages=policy.stages
    )
    assert own.is_own and not policy.ladder("health").is_own
    assert own.stage_ids == policy.stage_ids
    assert own.stage("cafcass") is policy.stage("cafcass")
    assert [ladder.id for ladder in policy.all_ladders] == ["own", "health", "other_authority"]


def test_which_ladder_a_stage_is_on() -> None:
    policy = load_default_policy()
    assert policy.ladder_of("team_manager").id == "own"
    assert policy.ladder_of("cafcass").id == "own"
    assert policy.ladder_of("designated_nurse").id == "health"
    assert policy.ladder_of("their_director").id == "other_authority"
    assert (
        policy.ladder("health").stage("designated_doctor").title
        == "Designated Doctor or Head of Safeguarding"
    )
    with pytest.raises(KeyError):
        policy.ladder_of("nope")
    with pytest.raises(KeyError):
        policy.ladder("nope")
    with pytest.raises(KeyError):
        policy.ladder("health").stage("team_manager")


def test_the_council_stages_are_only_its_own() -> None:
    # Policy.stages, .stage and .index still mean the council's own ladder, which is all disputes climb.
    policy = load_default_policy()
    assert "designated_nurse" not in policy.stage_ids
    with pytest.raises(KeyError):
        policy.stage("designated_nurse")


def test_a_policy_without_ladders_is_valid() -> None:
    # A top-level key goes before the first table, or TOML puts it in that table.
    for text in (VALID, "ladders = []\n" + VALID):
        policy = parse_policy(text)
        assert policy.ladders == ()
        assert [ladder.id for ladder in policy.all_ladders] == ["own"]


def test_parses_custom_ladders() -> None:
    policy = parse_policy(WITH_LADDERS)
    health, county = policy.ladders
    nurse, doctor = health.stages
    assert nurse == LadderStage(
        id="nurse", title="Nurse", owner_role=None, respond_within=FIVE_WORKING_DAYS, reminders=REMINDERS
    )
    assert isinstance(doctor, LadderStage)
    assert (doctor.owner_role, doctor.is_named, doctor.reminders) == ("head_of_service", False, ())
    assert doctor.respond_within.text == "PT1H"
    assert (county.organisation_kind, county.stage_ids) == ("other_authority", ("county_manager",))
    assert policy.stage_ids == ("first", "last")


def test_a_ladder_is_part_of_the_policy_version() -> None:
    # A dispute keeps the policy text it was raised under, by its hash; a ladder is in that text, so a
    # change to a ladder makes a new version and a running dispute keeps its old ladder.
    policy = parse_policy(WITH_LADDERS)
    longer = parse_policy(WITH_LADDERS.replace('respond_within = "5wd"', 'respond_within = "10wd"', 1))
    assert longer.sha256 != policy.sha256
    assert (
        longer.ladder("health").stages[0].respond_within != policy.ladder("health").stages[0].respond_within
    )
    calendar = CalendarConfig("Europe/London", None, (date(2022, 9, 19),), time(16, 30), time(8, 30))
    assert policy.with_calendar(calendar).ladders == policy.ladders


BAD_LADDERS = [
    # The ladder itself.
    ('id = "health"', 'id = "Health"', "ladders[0].id", "'Health' is not a valid ladder id"),
    ('id = "health"', 'id = "own"', "ladders[0].id", "council's own ladder"),
    ('id = "health"', "id = 7", "ladders[0].id", "expected a string, got int"),
    ('id = "county"', 'id = "health"', "ladders[1].id", "duplicate ladder id 'health' (also ladders[0])"),
    ('id = "health"\n', "", "ladders[0].id", "missing required key"),
    ('title = "Health"', 'title = " "', "ladders[0].title", "must not be empty"),
    ('title = "County"\n', "", "ladders[1].title", "missing required key"),
    (
        'organisation_kind = "partner"',
        'organisation_kind = "nhs"',
        "ladders[0].organisation_kind",
        "expected one of: partner, other_authority; got 'nhs'",
    ),
    ('organisation_kind = "partner"\n', "", "ladders[0].organisation_kind", "missing required key"),
    (
        'end = "iro_decision"',
        'end = "cafcass"',
        "ladders[0].end",
        "expected one of: iro_decision; got 'cafcass'",
    ),
    ('end = "iro_decision"\n', "", "ladders[0].end", "missing required key"),
    ('end = "iro_decision"', 'end = "iro_decision"\ncolour = "red"', "ladders[0].colour", "unknown key"),
    # Its stages.
    ('id = "nurse"', 'id = "Nurse 1"', "ladders[0].stages[0].id", "not a valid stage id"),
    ('id = "nurse"\n', "", "ladders[0].stages[0].id", "missing required key"),
    ('title = "Nurse"', 'title = ""', "ladders[0].stages[0].title", "must not be empty"),
    ('owner = "named"', 'owner = "iro"', "ladders[0].stages[0].owner", 'expected "named"'),
    ('owner = "named"', "owner = true", "ladders[0].stages[0].owner", "got True"),
    ('owner = "named"', 'owner = "named"\nowner_role = "iro"', "ladders[0].stages[0].owner", "not both"),
    ('owner = "named"\n', "", "ladders[0].stages[0].owner", 'missing required key: owner = "named"'),
    (
        'owner_role = "head_of_service"',
        'owner_role = "director"',
        "ladders[0].stages[1].owner_role",
        "unknown role 'director'",
    ),
    ('owner = "named"', 'owner = "named"\ncolour = "red"', "ladders[0].stages[0].colour", "unknown key"),
    ('respond_within = "5wd"', 'respond_within = "-5wd"', "ladders[0].stages[0].respond_within", "negative"),
    (
        'respond_within = "5wd"',
        'respond_within = "5 days"',
        "ladders[0].stages[0].respond_within",
        "expected working days",
    ),
    # After a ladder's last stage the IRO decides, so the last stage needs a due date like the others.
    ('respond_within = "PT1H"\n', "", "ladders[0].stages[1].respond_within", "missing required key"),
    ('"-2wd", "0wd"', '"-2wd", "soon"', "ladders[0].stages[0].reminders[1]", "expected working days"),
    ('["-2wd", "0wd"]', '"-2wd"', "ladders[0].stages[0].reminders", "expected a list"),
    # Stage ids are unique everywhere: a dispute's stage alone says which ladder it is on.
    (
        'id = "doctor"',
        'id = "nurse"',
        "ladders[0].stages[1].id",
        "duplicate stage id 'nurse' (also ladders[0].stages[0])",
    ),
    (
        'id = "county_manager"',
        'id = "doctor"',
        "ladders[1].stages[0].id",
        "duplicate stage id 'doctor' (also ladders[0].stages[1])",
    ),
    (
        'id = "nurse"',
        'id = "first"',
        "ladders[0].stages[0].id",
        "duplicate stage id 'first' (also stages[0])",
    ),
    (
        'id = "county_manager"',
        'id = "last"',
        "ladders[1].stages[0].id",
        "duplicate stage id 'last' (also stages[1])",
    ),
]


@pytest.mark.parametrize(("old", "new", "key", "message"), BAD_LADDERS)
def test_ladder_errors_name_the_key(old: str, new: str, key: str, message: str) -> None:
    assert old in LADDERS
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(VALID + LADDERS.replace(old, new, 1))
    errors = excinfo.value.errors
    assert [k for k, _ in errors] == [key], errors
    assert message in errors[0][1], errors
    assert str(excinfo.value) == f"{key}: {errors[0][1]}"


def test_the_councils_duplicate_stage_says_where_the_first_is() -> None:
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(VALID.replace('id = "first"', 'id = "last"'))
    assert excinfo.value.errors == [("stages[1].id", "duplicate stage id 'last' (also stages[0])")]


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        (
            '[[ladders]]\nid = "x"\ntitle = "X"\norganisation_kind = "partner"\nend = "iro_decision"\n',
            [("ladders[0].stages", "missing required [[ladders.stages]]")],
        ),
        (
            '[[ladders]]\nid = "x"\ntitle = "X"\norganisation_kind = "partner"\nend = "iro_decision"\n'
            "stages = []\n",
            [("ladders[0].stages", "at least 1 stage is needed, found 0")],
        ),
        (
            '[[ladders]]\nid = "x"\ntitle = "X"\norganisation_kind = "partner"\nend = "iro_decision"\n'
            'stages = ["nurse"]\n',
            [("ladders[0].stages", "expected an array of tables ([[ladders.stages]])")],
        ),
    ],
)
def test_ladder_stages_must_be_an_array_of_tables(text: str, errors: list[tuple[str, str]]) -> None:
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(VALID + text)
    assert excinfo.value.errors == errors


@pytest.mark.parametrize("ladders", ['ladders = "health"', "ladders = [1, 2]"])
def test_ladders_must_be_an_array_of_tables(ladders: str) -> None:
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(ladders + "\n" + VALID)
    assert excinfo.value.errors == [("ladders", "expected an array of tables ([[ladders]])")]


def test_collects_every_error_across_the_ladders() -> None:
    text = (
        WITH_LADDERS.replace('organisation_kind = "partner"', 'organisation_kind = "nhs"')
        .replace('owner_role = "head_of_service"', 'owner = "someone"')
        .replace('id = "county_manager"', 'id = "first"')
        .replace('owner_role = "team_manager"', 'owner_role = "boss"')
    )
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(text)
    assert [key for key, _ in excinfo.value.errors] == [
        "stages[0].owner_role",
        "ladders[0].organisation_kind",
        "ladders[0].stages[1].owner",
        "ladders[1].stages[0].id",
    ]


def test_a_broken_council_ladder_does_not_hide_the_partner_ladders_errors() -> None:
    text = VALID[: VALID.index("[[stages]]")] + LADDERS.replace('end = "iro_decision"', 'end = "never"', 1)
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(text)
    assert [key for key, _ in excinfo.value.errors] == ["stages", "ladders[0].end"]
