"""Who may use which trigger: each relation to a dispute (its IRO, an IRO manager, its owner, an admin,
someone unrelated, another IRO) against every trigger, and the actions each is offered in each situation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from states.machine import Request, Situation, machine_for
from states.permissions import Relation, allowed_actions, may_ever_use
from states.policy import load_default_policy
from states.vocabulary import ACTION_TRIGGERS, State, Trigger

MACHINE = machine_for(load_default_policy())
NOW = datetime(2018, 1, 8, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=14)
EARLIER = NOW - timedelta(days=1)

IRO = Relation(roles=frozenset({"iro"}), is_iro=True)
IRO_MANAGER = Relation(roles=frozenset({"iro_manager"}))
OWNER = Relation(roles=frozenset({"team_manager"}), is_owner=True)
ADMIN = Relation(roles=frozenset({"admin"}))
UNRELATED = Relation(roles=frozenset({"team_manager"}))
OTHER_IRO = Relation(roles=frozenset({"iro"}))  # an IRO, but not this dispute's

RELATIONS = {
    "iro": IRO,
    "iro_manager": IRO_MANAGER,
    "owner": OWNER,
    "admin": ADMIN,
    "unrelated": UNRELATED,
    "other_iro": OTHER_IRO,
}

IRO_TRIGGERS = {
    "resolve",
    "reopen",
    "escalate",
    "refer_to_cafcass",
    "close",
    "withdraw",
    "hold",
    "resume",
    "extend",
    "amend",
    "name_contact",
}

# The triggers each relation may ever use, whatever the dispute's stage and state.
EVER: dict[str, set[str]] = {
    "iro": IRO_TRIGGERS,
    "iro_manager": IRO_TRIGGERS | {"reassign", "reassign_iro"},
    "owner": {"acknowledge", "respond", "resolve", "reassign"},
    "admin": {"reassign", "reassign_iro", "amend", "redact"},
    "unrelated": set(),
    "other_iro": set(),
}

NAMES = [t.value for t in Trigger] + ["frobnicate", "", "RESOLVE", "Resolve", "resolve "]


@pytest.mark.parametrize("trigger", NAMES)
@pytest.mark.parametrize("who", list(RELATIONS))
def test_may_ever_use(who: str, trigger: str) -> None:
    assert may_ever_use(trigger, RELATIONS[who]) is (trigger in EVER[who])


@pytest.mark.parametrize("who", list(RELATIONS))
def test_raise_timeout_and_unknown_names_are_never_usable(who: str) -> None:
    for trigger in ("raise", "timeout", "frobnicate"):
        assert may_ever_use(trigger, RELATIONS[who]) is False


def test_admin_with_every_role_still_cannot_raise_or_time_out() -> None:
    everyone = Relation(
        roles=frozenset({"iro", "iro_manager", "admin", "team_manager"}), is_iro=True, is_owner=True
    )
    usable = {t.value for t in Trigger if may_ever_use(t.value, everyone)}
    assert usable == {t.value for t in ACTION_TRIGGERS}


def test_owner_never_escalates_and_only_admin_redacts() -> None:
    assert not may_ever_use("escalate", OWNER)
    assert [who for who, rel in RELATIONS.items() if may_ever_use("redact", rel)] == ["admin"]
    assert [who for who, rel in RELATIONS.items() if may_ever_use("reassign_iro", rel)] == [
        "iro_manager",
        "admin",
    ]


def test_may_ever_use_accepts_the_enum() -> None:
    assert may_ever_use(Trigger.ESCALATE, IRO) is True
    assert may_ever_use(Trigger.ESCALATE, OWNER) is False


# --- allowed_actions -------------------------------------------------------------------------------------


def situation(
    stage: str,
    state: State,
    *,
    case_type: str = "looked_after",
    reopen_until: datetime | None = LATER,
    referred: bool | None = None,
) -> Situation:
    if referred is None:
        referred = state in (State.REFERRED, State.CLOSED)
    return Situation(
        stage=stage, state=state, case_type=case_type, reopen_until=reopen_until, referred=referred
    )


TM = "team_manager"
LAST = "cafcass"
AR = State.AWAITING_RESPONSE

CASES = [
    # team_manager, awaiting_response
    (
        "tm-ar",
        situation(TM, AR),
        "iro",
        ["resolve", "escalate", "refer_to_cafcass", "withdraw", "hold", "extend", "amend"],
    ),
    (
        "tm-ar",
        situation(TM, AR),
        "iro_manager",
        [
            "resolve",
            "escalate",
            "refer_to_cafcass",
            "withdraw",
            "hold",
            "extend",
            "reassign",
            "reassign_iro",
            "amend",
        ],
    ),
    ("tm-ar", situation(TM, AR), "owner", ["acknowledge", "respond", "resolve", "reassign"]),
    ("tm-ar", situation(TM, AR), "admin", ["reassign", "reassign_iro", "amend", "redact"]),
    ("tm-ar", situation(TM, AR), "unrelated", []),
    ("tm-ar", situation(TM, AR), "other_iro", []),
    # other case types cannot be referred to CAFCASS
    (
        "tm-ar-child-protection",
        situation(TM, AR, case_type="child_protection"),
        "iro",
        ["resolve", "escalate", "withdraw", "hold", "extend", "amend"],
    ),
    (
        "tm-ar-care-leaver",
        situation(TM, AR, case_type="care_leaver"),
        "iro",
        ["resolve", "escalate", "withdraw", "hold", "extend", "amend"],
    ),
    # already referred alongside the ladder
    (
        "tm-ar-referred-alongside",
        situation(TM, AR, referred=True),
        "iro",
        ["resolve", "escalate", "close", "withdraw", "hold", "extend", "amend"],
    ),
    # team_manager, responded
    (
        "tm-responded",
        situation(TM, State.RESPONDED),
        "iro",
        ["resolve", "escalate", "refer_to_cafcass", "withdraw", "amend"],
    ),
    ("tm-responded", situation(TM, State.RESPONDED), "owner", ["resolve", "reassign"]),
    (
        "tm-responded",
        situation(TM, State.RESPONDED),
        "admin",
        ["reassign", "reassign_iro", "amend", "redact"],
    ),
    # team_manager, on_hold
    (
        "tm-on-hold",
        situation(TM, State.ON_HOLD),
        "iro",
        ["resolve", "escalate", "refer_to_cafcass", "withdraw", "resume", "amend"],
    ),
    ("tm-on-hold", situation(TM, State.ON_HOLD), "owner", ["resolve", "reassign"]),
    # team_manager, resolved
    ("tm-resolved", situation(TM, State.RESOLVED), "iro", ["reopen", "amend"]),
    ("tm-resolved", situation(TM, State.RESOLVED), "iro_manager", ["reopen", "reassign_iro", "amend"]),
    ("tm-resolved", situation(TM, State.RESOLVED), "owner", []),
    ("tm-resolved", situation(TM, State.RESOLVED), "admin", ["reassign_iro", "amend", "redact"]),
    ("tm-resolved-late", situation(TM, State.RESOLVED, reopen_until=EARLIER), "iro", ["amend"]),
    (
        "tm-resolved-late",
        situation(TM, State.RESOLVED, reopen_until=EARLIER),
        "iro_manager",
        ["reassign_iro", "amend"],
    ),
    # ended
    ("tm-withdrawn", situation(TM, State.WITHDRAWN), "iro", ["amend"]),
    ("tm-withdrawn", situation(TM, State.WITHDRAWN), "iro_manager", ["amend"]),
    ("tm-withdrawn", situation(TM, State.WITHDRAWN), "owner", []),
    ("tm-withdrawn", situation(TM, State.WITHDRAWN), "admin", ["amend", "redact"]),
    ("cafcass-closed", situation(LAST, State.CLOSED), "iro", ["amend"]),
    ("cafcass-closed", situation(LAST, State.CLOSED), "admin", ["amend", "redact"]),
    # the end of the ladder
    (
        "cafcass-decision",
        situation(LAST, State.AWAITING_IRO_DECISION),
        "iro",
        ["resolve", "refer_to_cafcass", "withdraw", "amend"],
    ),
    (
        "cafcass-decision-child-protection",
        situation(LAST, State.AWAITING_IRO_DECISION, case_type="child_protection"),
        "iro",
        ["resolve", "withdraw", "amend"],
    ),
    ("cafcass-decision", situation(LAST, State.AWAITING_IRO_DECISION), "owner", ["resolve", "reassign"]),
    ("cafcass-referred", situation(LAST, State.REFERRED), "iro", ["close", "withdraw", "amend"]),
    (
        "cafcass-referred",
        situation(LAST, State.REFERRED),
        "iro_manager",
        ["close", "withdraw", "reassign", "reassign_iro", "amend"],
    ),
    (
        "cafcass-referred",
        situation(LAST, State.REFERRED),
        "admin",
        ["reassign", "reassign_iro", "amend", "redact"],
    ),
    # assistant_director: escalation is still offered (it lands at cafcass)
    (
        "ad-ar",
        situation("assistant_director", AR),
        "iro",
        ["resolve", "escalate", "refer_to_cafcass", "withdraw", "hold", "extend", "amend"],
    ),
]


@pytest.mark.parametrize(
    ("sit", "who", "expected"),
    [pytest.param(sit, who, expected, id=f"{name}-{who}") for name, sit, who, expected in CASES],
)
def test_allowed_actions(sit: Situation, who: str, expected: list[str]) -> None:
    assert allowed_actions(MACHINE, sit, RELATIONS[who], Request(now=NOW)) == expected


def test_allowed_actions_ignore_the_callers_own_inputs() -> None:
    # A named to_stage or a referral alongside must not hide what is available with the defaults.
    request = Request(now=NOW, to_stage="quality_assurance", alongside=True)
    assert allowed_actions(MACHINE, situation(TM, AR), IRO, request) == [
        "resolve",
        "escalate",
        "refer_to_cafcass",
        "withdraw",
        "hold",
        "extend",
        "amend",
    ]


def test_allowed_actions_use_the_requests_time_for_reopen() -> None:
    sit = situation(TM, State.RESOLVED, reopen_until=NOW)
    assert allowed_actions(MACHINE, sit, IRO, Request(now=NOW)) == ["reopen", "amend"]
    late = Request(now=NOW + timedelta(seconds=1))
    assert allowed_actions(MACHINE, sit, IRO, late) == ["amend"]


EVERY_SITUATION = [
    situation(stage, state, case_type=case_type)
    for stage in load_default_policy().stage_ids
    for state in State
    for case_type in ("looked_after", "child_protection")
]


@pytest.mark.parametrize("who", list(RELATIONS))
def test_allowed_actions_agree_with_may_ever_use_and_the_machine(who: str) -> None:
    relation = RELATIONS[who]
    request = Request(now=NOW)
    order = [t.value for t in ACTION_TRIGGERS]
    for sit in EVERY_SITUATION:
        actions = allowed_actions(MACHINE, sit, relation, request)
        assert "raise" not in actions
        assert "timeout" not in actions
        assert actions == sorted(actions, key=order.index)
        expected = [t for t in order if t in EVER[who] and MACHINE.may(t, sit, request)]
        assert actions == expected, sit
