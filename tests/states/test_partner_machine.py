"""Partner ladders in the machine (SPEC 10): they climb within themselves, a named stage with nobody named
for it makes the dispute wait for the IRO, name_contact enters it, and the IRO decides after the last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from states.machine import Position, Request, Situation, TriggerRefused, machine_for
from states.permissions import Relation, allowed_actions
from states.policy import load_default_policy
from states.vocabulary import EXTERNAL, ROLES, State, Trigger

POLICY = load_default_policy()
MACHINE = machine_for(POLICY)
NOW = datetime(2018, 1, 8, 10, 0, tzinfo=UTC)
NURSE, DOCTOR, ICB = "designated_nurse", "designated_doctor", "icb_director_of_nursing"
AR, RESP, AID, RES = (
    State.AWAITING_RESPONSE,
    State.RESPONDED,
    State.AWAITING_IRO_DECISION,
    State.RESOLVED,
)


def at(stage: str, state: State, named: tuple[str, ...] = (), waiting_for: str | None = None) -> Situation:
    return Situation(
        stage=stage,
        state=state,
        case_type="looked_after",
        reopen_until=NOW + timedelta(days=14),
        named=frozenset(named),
        waiting_for=waiting_for,
    )


def fire(sit: Situation, trigger: Trigger, **request: str) -> Position:
    req = Request(now=NOW, **request)  # type: ignore[arg-type]
    assert MACHINE.may(trigger.value, sit, req)
    return MACHINE.fire(trigger.value, sit, req)


def test_named_stages_are_owned_by_the_external_pseudo_role_which_no_staff_role_is() -> None:
    assert POLICY.any_stage(NURSE).owner_role == EXTERNAL and EXTERNAL not in ROLES
    assert POLICY.any_stage("team_manager") is POLICY.stage("team_manager")
    assert MACHINE.start(NURSE) == Position(NURSE, AR)


def test_a_timeout_enters_the_next_stage_of_the_same_ladder_when_its_contact_is_named() -> None:
    assert fire(at(NURSE, AR, (NURSE, DOCTOR)), Trigger.TIMEOUT) == Position(DOCTOR, AR)
    assert fire(at(DOCTOR, AR, (NURSE, DOCTOR, ICB)), Trigger.TIMEOUT) == Position(ICB, AR)
    assert fire(at("their_team_manager", AR, ("their_head_of_service",)), Trigger.TIMEOUT) == Position(
        "their_head_of_service", AR
    )


def test_with_nobody_named_the_dispute_waits_and_name_contact_enters_the_stage() -> None:
    assert fire(at(NURSE, AR, (NURSE,)), Trigger.TIMEOUT) == Position(NURSE, AID)
    assert fire(at(NURSE, RESP, (NURSE,)), Trigger.ESCALATE) == Position(NURSE, AID)
    waiting = at(NURSE, AID, (NURSE, DOCTOR), waiting_for=DOCTOR)
    assert fire(waiting, Trigger.NAME_CONTACT, contact_stage=DOCTOR) == Position(DOCTOR, AR)
    # Naming a contact for a stage further up changes the contacts only.
    assert fire(waiting, Trigger.NAME_CONTACT, contact_stage=ICB) == Position(NURSE, AID)
    assert fire(at(NURSE, AR, (NURSE,)), Trigger.NAME_CONTACT, contact_stage=DOCTOR) == Position(NURSE, AR)


def test_after_the_last_stage_the_iro_decides_and_cafcass_is_the_councils_own() -> None:
    assert fire(at(ICB, AR, (ICB,)), Trigger.TIMEOUT) == Position(ICB, AID)
    assert fire(at(ICB, RES, (ICB,)), Trigger.REOPEN) == Position(ICB, AID)
    for state in (AR, RESP, AID):
        with pytest.raises(TriggerRefused):
            MACHINE.fire(Trigger.REFER_TO_CAFCASS.value, at(NURSE, state, (NURSE,)), Request(now=NOW))
    with pytest.raises(TriggerRefused):
        MACHINE.fire(Trigger.NAME_CONTACT.value, at("team_manager", AR), Request(now=NOW))


def test_a_contact_owning_a_stage_answers_for_it_and_does_nothing_else() -> None:
    contact = Relation(roles=frozenset({EXTERNAL}), is_owner=True)
    assert allowed_actions(MACHINE, at(NURSE, AR, (NURSE,)), contact, Request(now=NOW)) == [
        "acknowledge",
        "respond",
        "resolve",
    ]
    assert allowed_actions(MACHINE, at(NURSE, RESP, (NURSE,)), contact, Request(now=NOW)) == ["resolve"]
