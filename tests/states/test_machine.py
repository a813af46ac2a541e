"""The ladder machine: where each trigger takes a dispute from each stage and state, and which it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from states.machine import LadderMachine, Position, Request, Situation, TriggerRefused, machine_for
from states.policy import default_policy_text, load_default_policy, parse_policy
from states.vocabulary import State, Trigger
from tests.factories import STAGES

POLICY = load_default_policy()
MACHINE = machine_for(POLICY)
NOW = datetime(2018, 1, 8, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=14)

MIDDLE = "team_manager"
NEXT = "head_of_corporate_parenting"
LAST = "cafcass"

AR = State.AWAITING_RESPONSE
RESP = State.RESPONDED
HOLD = State.ON_HOLD
AID = State.AWAITING_IRO_DECISION
REF = State.REFERRED
RES = State.RESOLVED
WD = State.WITHDRAWN
CLO = State.CLOSED

OPEN = (AR, RESP, HOLD, AID, REF)
ALL_STATES = tuple(State)


def situation(
    stage: str,
    state: State,
    *,
    case_type: str = "looked_after",
    reopen_until: datetime | None = LATER,
    referred: bool | None = None,
) -> Situation:
    # A dispute that is (or was) at `referred` has been referred; say so unless a test says otherwise.
    if referred is None:
        referred = state in (REF, CLO)
    return Situation(
        stage=stage, state=state, case_type=case_type, reopen_until=reopen_until, referred=referred
    )


def fire(
    machine: LadderMachine,
    sit: Situation,
    trigger: str,
    *,
    now: datetime = NOW,
    to_stage: str | None = None,
    alongside: bool = False,
) -> Position | None:
    """Where the trigger goes, or None when refused; checks that `may` agrees with `fire`."""
    req = Request(now=now, to_stage=to_stage, alongside=alongside)
    try:
        moved = machine.fire(trigger, sit, req)
    except TriggerRefused as exc:
        assert exc.trigger == trigger
        assert exc.position == Position(sit.stage, sit.state)
        assert machine.may(trigger, sit, req) is False
        return None
    assert machine.may(trigger, sit, req) is True
    return moved


def test_default_policy_has_the_spec_ladder() -> None:
    assert POLICY.stage_ids == STAGES


# --- every (state, trigger) pair at a middle stage -------------------------------------------------------


def _same(state: State) -> Position:
    return Position(MIDDLE, state)


# For each trigger: {from state: where it goes}. Every state not listed must be refused.
MIDDLE_TABLE: dict[Trigger, dict[State, Position]] = {
    Trigger.ACKNOWLEDGE: {AR: _same(AR)},
    Trigger.RESPOND: {AR: _same(RESP)},
    Trigger.RESOLVE: {s: _same(RES) for s in (AR, RESP, HOLD, AID)},
    Trigger.REOPEN: {RES: Position(NEXT, AR)},
    Trigger.ESCALATE: {s: Position(NEXT, AR) for s in (AR, RESP, HOLD)},
    Trigger.TIMEOUT: {AR: Position(NEXT, AR)},
    Trigger.DEFER: {AR: Position(MIDDLE, AR)},
    Trigger.REFER_TO_CAFCASS: {s: Position(LAST, REF) for s in (AR, RESP, HOLD, AID)},
    Trigger.CLOSE: {REF: _same(CLO)},
    Trigger.WITHDRAW: {s: _same(WD) for s in OPEN},
    Trigger.HOLD: {AR: _same(HOLD)},
    Trigger.RESUME: {HOLD: _same(AR)},
    Trigger.EXTEND: {AR: _same(AR)},
    Trigger.REASSIGN: {s: _same(s) for s in OPEN},
    Trigger.REASSIGN_IRO: {s: _same(s) for s in (*OPEN, RES)},
    Trigger.AMEND: {s: _same(s) for s in ALL_STATES},
    Trigger.REDACT: {s: _same(s) for s in ALL_STATES},
    # Contacts are named on partner ladders only: the council's own stages are owned by staff.
    Trigger.NAME_CONTACT: {},
    # Bookkeeping entries are appended beside the machine, never fired through it.
    Trigger.REMIND: {},
    Trigger.SEAL: {},
}

MIDDLE_CASES = [
    pytest.param(state, trigger, MIDDLE_TABLE[trigger].get(state), id=f"{state.value}-{trigger.value}")
    for trigger in Trigger
    if trigger is not Trigger.RAISE
    for state in ALL_STATES
]


def test_middle_table_covers_every_trigger_but_raise() -> None:
    assert set(MIDDLE_TABLE) == set(Trigger) - {Trigger.RAISE}
    assert len(MIDDLE_CASES) == 20 * 8


@pytest.mark.parametrize(("state", "trigger", "expected"), MIDDLE_CASES)
def test_every_state_and_trigger_at_a_middle_stage(
    state: State, trigger: Trigger, expected: Position | None
) -> None:
    assert fire(MACHINE, situation(MIDDLE, state), trigger.value) == expected


def test_unknown_trigger_is_refused() -> None:
    with pytest.raises(TriggerRefused):
        MACHINE.fire("frobnicate", situation(MIDDLE, AR), Request(now=NOW))
    assert MACHINE.may("frobnicate", situation(MIDDLE, AR), Request(now=NOW)) is False


# --- escalate and timeout --------------------------------------------------------------------------------

NEXT_OF = [
    ("quality_assurance", Position("team_manager", AR)),
    ("team_manager", Position("head_of_corporate_parenting", AR)),
    ("head_of_corporate_parenting", Position("head_of_service", AR)),
    ("head_of_service", Position("assistant_director", AR)),
    ("assistant_director", Position("cafcass", AID)),
]


@pytest.mark.parametrize("state", [AR, RESP, HOLD])
@pytest.mark.parametrize(("stage", "expected"), NEXT_OF)
def test_escalate_goes_to_the_next_stage_by_default(stage: str, expected: Position, state: State) -> None:
    assert fire(MACHINE, situation(stage, state), "escalate") == expected


@pytest.mark.parametrize(("stage", "expected"), NEXT_OF)
def test_timeout_goes_to_the_next_stage(stage: str, expected: Position) -> None:
    assert fire(MACHINE, situation(stage, AR), "timeout") == expected


@pytest.mark.parametrize("state", [RESP, HOLD, AID, REF, RES, WD, CLO])
@pytest.mark.parametrize("stage", STAGES)
def test_timeout_only_fires_while_awaiting_response(stage: str, state: State) -> None:
    assert fire(MACHINE, situation(stage, state), "timeout") is None


@pytest.mark.parametrize(
    ("to_stage", "expected"),
    [
        ("team_manager", Position("team_manager", AR)),
        ("head_of_corporate_parenting", Position("head_of_corporate_parenting", AR)),
        ("head_of_service", Position("head_of_service", AR)),
        ("assistant_director", Position("assistant_director", AR)),
        ("cafcass", Position("cafcass", AID)),
    ],
)
@pytest.mark.parametrize("state", [AR, RESP, HOLD])
def test_escalate_to_a_named_later_stage(state: State, to_stage: str, expected: Position) -> None:
    assert fire(MACHINE, situation("quality_assurance", state), "escalate", to_stage=to_stage) == expected


@pytest.mark.parametrize(
    "to_stage",
    ["quality_assurance", "team_manager", "no_such_stage", ""],
    ids=["earlier", "same", "unknown", "empty"],
)
def test_escalate_to_a_stage_that_is_not_later_is_refused(to_stage: str) -> None:
    assert fire(MACHINE, situation(MIDDLE, AR), "escalate", to_stage=to_stage) is None


def test_escalate_from_the_middle_skips_to_the_end() -> None:
    assert fire(MACHINE, situation(MIDDLE, RESP), "escalate", to_stage="cafcass") == Position(LAST, AID)


@pytest.mark.parametrize("to_stage", [None, "cafcass", "assistant_director"])
@pytest.mark.parametrize("state", ALL_STATES)
def test_nothing_escalates_from_cafcass(state: State, to_stage: str | None) -> None:
    sit = situation(LAST, state)
    assert fire(MACHINE, sit, "escalate", to_stage=to_stage) is None
    assert fire(MACHINE, sit, "timeout") is None


# --- reopen ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "expected"), NEXT_OF)
def test_reopen_goes_up_one_stage(stage: str, expected: Position) -> None:
    assert fire(MACHINE, situation(stage, RES), "reopen") == expected


def test_reopen_at_the_last_stage_goes_back_to_the_iro_decision() -> None:
    # There is no stage above cafcass; the machine hands the dispute back to the IRO there.
    assert fire(MACHINE, situation(LAST, RES), "reopen") == Position(LAST, AID)


@pytest.mark.parametrize(
    ("now", "until", "allowed"),
    [
        (NOW, NOW + timedelta(seconds=1), True),
        (NOW, NOW, True),
        (NOW + timedelta(seconds=1), NOW, False),
        (NOW + timedelta(days=30), NOW, False),
        (NOW, None, False),
    ],
    ids=["before", "at-the-limit", "just-after", "long-after", "no-window"],
)
def test_reopen_only_within_the_window(now: datetime, until: datetime | None, allowed: bool) -> None:
    sit = situation(MIDDLE, RES, reopen_until=until)
    expected = Position(NEXT, AR) if allowed else None
    assert fire(MACHINE, sit, "reopen", now=now) == expected


@pytest.mark.parametrize("state", [AR, RESP, HOLD, AID, REF, WD, CLO])
def test_reopen_only_from_resolved(state: State) -> None:
    assert fire(MACHINE, situation(MIDDLE, state), "reopen") is None


# --- refer_to_cafcass and close --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "state"),
    [(s, st) for s in STAGES[:-1] for st in (AR, RESP, HOLD)] + [(LAST, AID)],
)
def test_refer_to_cafcass_moves_to_cafcass_referred(stage: str, state: State) -> None:
    assert fire(MACHINE, situation(stage, state), "refer_to_cafcass") == Position(LAST, REF)


@pytest.mark.parametrize(
    ("stage", "state"),
    [(s, st) for s in STAGES[:-1] for st in (AR, RESP, HOLD)] + [(LAST, AID)],
)
def test_refer_to_cafcass_alongside_stays_put(stage: str, state: State) -> None:
    assert fire(MACHINE, situation(stage, state), "refer_to_cafcass", alongside=True) == Position(
        stage, state
    )


@pytest.mark.parametrize("alongside", [False, True])
@pytest.mark.parametrize("state", [AR, RESP, HOLD, AID, REF, RES, WD, CLO])
@pytest.mark.parametrize("case_type", ["child_protection", "care_leaver"])
def test_refer_to_cafcass_is_for_looked_after_children_only(
    case_type: str, state: State, alongside: bool
) -> None:
    sit = situation(MIDDLE, state, case_type=case_type, referred=False)
    assert fire(MACHINE, sit, "refer_to_cafcass", alongside=alongside) is None


@pytest.mark.parametrize("alongside", [False, True])
@pytest.mark.parametrize(
    ("stage", "state"), [(MIDDLE, AR), (MIDDLE, RESP), (MIDDLE, HOLD), (LAST, AID), (LAST, REF)]
)
def test_refer_to_cafcass_is_refused_once_referred(stage: str, state: State, alongside: bool) -> None:
    sit = situation(stage, state, referred=True)
    assert fire(MACHINE, sit, "refer_to_cafcass", alongside=alongside) is None


@pytest.mark.parametrize("state", [RES, WD, CLO])
def test_refer_to_cafcass_is_refused_once_ended(state: State) -> None:
    assert fire(MACHINE, situation(MIDDLE, state, referred=False), "refer_to_cafcass") is None


def test_other_case_types_still_escalate_to_cafcass() -> None:
    sit = situation("assistant_director", AR, case_type="child_protection")
    assert fire(MACHINE, sit, "escalate") == Position(LAST, AID)
    assert fire(MACHINE, sit, "timeout") == Position(LAST, AID)


@pytest.mark.parametrize("state", ALL_STATES)
def test_close_only_from_referred(state: State) -> None:
    expected = Position(LAST, CLO) if state is REF else None
    assert fire(MACHINE, situation(LAST, state), "close") == expected


def test_close_records_cafcass_outcome_after_a_referral_alongside_the_ladder() -> None:
    # A referral alongside leaves the state as it was; CAFCASS's outcome still closes the dispute there.
    assert fire(MACHINE, situation(MIDDLE, AR, referred=True), "close") == Position(MIDDLE, CLO)
    assert fire(MACHINE, situation(MIDDLE, AR, referred=False), "close") is None


# --- the last stage --------------------------------------------------------------------------------------

LAST_TABLE: dict[State, dict[str, Position]] = {
    AID: {
        "resolve": Position(LAST, RES),
        "refer_to_cafcass": Position(LAST, REF),
        "withdraw": Position(LAST, WD),
        "reassign": Position(LAST, AID),
        "reassign_iro": Position(LAST, AID),
        "amend": Position(LAST, AID),
        "redact": Position(LAST, AID),
    },
    REF: {
        "close": Position(LAST, CLO),
        "withdraw": Position(LAST, WD),
        "reassign": Position(LAST, REF),
        "reassign_iro": Position(LAST, REF),
        "amend": Position(LAST, REF),
        "redact": Position(LAST, REF),
    },
}


@pytest.mark.parametrize("trigger", [t.value for t in Trigger if t is not Trigger.RAISE])
@pytest.mark.parametrize("state", [AID, REF])
def test_reachable_states_at_the_last_stage(state: State, trigger: str) -> None:
    assert fire(MACHINE, situation(LAST, state), trigger) == LAST_TABLE[state].get(trigger)


# --- start and sharing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "expected"),
    [(s, Position(s, AR)) for s in STAGES[:-1]] + [(LAST, Position(LAST, AID))],
)
def test_start(stage: str, expected: Position) -> None:
    assert MACHINE.start(stage) == expected


def test_machine_for_shares_one_machine_per_policy_text() -> None:
    again = load_default_policy()
    assert again is not POLICY
    assert machine_for(again) is MACHINE
    assert machine_for(POLICY) is MACHINE
    assert MACHINE.policy.sha256 == POLICY.sha256


def test_machine_for_builds_another_machine_for_another_text() -> None:
    other = parse_policy(default_policy_text() + "\n# a comment changes the text\n")
    assert machine_for(other) is not MACHINE
    assert machine_for(other) is machine_for(other)


# --- another ladder --------------------------------------------------------------------------------------

THREE = """
[calendar]
timezone = "Europe/London"
bank_holidays = "none"
closure_days = []
close_of_business = "17:00"
start_of_business = "09:00"

[rules]
reopen_within = "P3D"
remind_iro_after = "PT30S"
link_valid_after_due = "PT30S"

[[stages]]
id = "triage"
title = "Triage"
owner_role = "team_manager"
respond_within = "PT30S"

[[stages]]
id = "panel"
title = "Panel"
owner_role = "head_of_service"
respond_within = "PT30S"

[[stages]]
id = "tribunal"
title = "Tribunal"
owner_role = "iro"
"""

THREE_MACHINE = machine_for(parse_policy(THREE))


@pytest.mark.parametrize(
    ("stage", "trigger", "to_stage", "expected"),
    [
        ("triage", "escalate", None, Position("panel", AR)),
        ("triage", "escalate", "panel", Position("panel", AR)),
        ("triage", "escalate", "tribunal", Position("tribunal", AID)),
        ("panel", "escalate", None, Position("tribunal", AID)),
        ("panel", "escalate", "triage", None),
        ("tribunal", "escalate", None, None),
        ("triage", "escalate", "team_manager", None),
        ("triage", "timeout", None, Position("panel", AR)),
        ("panel", "timeout", None, Position("tribunal", AID)),
        ("tribunal", "timeout", None, None),
    ],
)
def test_another_ladder_escalates_in_its_own_order(
    stage: str, trigger: str, to_stage: str | None, expected: Position | None
) -> None:
    sit = situation(stage, AR if stage != "tribunal" else AID)
    assert fire(THREE_MACHINE, sit, trigger, to_stage=to_stage) == expected


def test_another_ladder_reopens_and_refers_to_its_own_stages() -> None:
    assert fire(THREE_MACHINE, situation("triage", RES), "reopen") == Position("panel", AR)
    assert fire(THREE_MACHINE, situation("panel", RES), "reopen") == Position("tribunal", AID)
    assert fire(THREE_MACHINE, situation("triage", AR), "refer_to_cafcass") == Position("tribunal", REF)
    assert THREE_MACHINE.start("triage") == Position("triage", AR)
    assert THREE_MACHINE.start("tribunal") == Position("tribunal", AID)


def test_another_ladder_knows_nothing_of_the_default_stages() -> None:
    assert fire(THREE_MACHINE, situation("triage", AR), "escalate", to_stage="cafcass") is None


def test_an_extra_stage_is_climbed_in_order() -> None:
    extra = """
[[stages]]
id = "legal_review"
title = "Legal review"
owner_role = "assistant_director"
respond_within = "5wd"

# The assistant director"""
    text = default_policy_text().replace("\n# The assistant director", extra, 1)
    policy = parse_policy(text)
    assert policy.stage_ids == (*STAGES[:4], "legal_review", *STAGES[4:])
    machine = machine_for(policy)
    assert fire(machine, situation("head_of_service", AR), "escalate") == Position("legal_review", AR)
    assert fire(machine, situation("legal_review", AR), "timeout") == Position("assistant_director", AR)
    assert fire(machine, situation("assistant_director", AR), "escalate") == Position(LAST, AID)


def test_may_answers_as_fire_does_for_every_stage_state_trigger_and_guard_input() -> None:
    # `may` reads the guards without firing; it must agree with firing everywhere, or the allowed
    # actions a caller is shown would differ from what the same action then does.
    from itertools import product

    from states.vocabulary import CaseType

    checked = 0
    for stage, state, trigger, case_type, referred, until, to_stage, alongside in product(
        STAGES,
        ALL_STATES,
        [t.value for t in Trigger] + ["no_such_trigger"],
        [c.value for c in CaseType],
        (False, True),
        (None, NOW - timedelta(days=1), LATER),
        (None, NEXT, LAST, MIDDLE),
        (False, True),
    ):
        situation = Situation(stage, state, case_type, reopen_until=until, referred=referred)
        request = Request(now=NOW, to_stage=to_stage, alongside=alongside)
        try:
            MACHINE.fire(trigger, situation, request)
            fires = True
        except TriggerRefused:
            fires = False
        assert MACHINE.may(trigger, situation, request) is fires, (stage, state, trigger, situation, request)
        checked += 1
    assert checked > 10_000
