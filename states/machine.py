"""The dispute ladder as one `transitions` machine per policy.

A machine state is the pair (stage, state) written ``"stage:state"``, so the machine holds every stage of
the policy and every state a dispute can be in, and the policy's order of stages decides where escalations
go. The machine is built once per policy text and shared by every dispute: each call dispatches on a
throwaway `_Token`, so nothing per-dispute is registered on it (a `transitions` machine keeps every model
added to it, so one model per dispute would grow without end).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from typing import Any

from transitions import Machine, MachineError
from transitions.core import EventData

from states.policy import LadderStage, Policy
from states.vocabulary import OPEN_STATES, CaseType, State, Trigger


@dataclass(frozen=True)
class Position:
    stage: str
    state: State


@dataclass(frozen=True)
class Situation:
    """What the guards need to know about a dispute, as plain values."""

    stage: str
    state: State
    case_type: str
    reopen_until: datetime | None = None
    referred: bool = False
    # Partner ladders: the named stages that have a contact named for this dispute, and the stage the
    # dispute waits to enter until the IRO names its contact (None when it is not waiting for one).
    named: frozenset[str] = frozenset()
    waiting_for: str | None = None


@dataclass(frozen=True)
class Request:
    """The trigger's own inputs that guards look at."""

    now: datetime
    to_stage: str | None = None
    alongside: bool = False
    contact_stage: str | None = None  # name_contact: the stage whose contact the IRO names


class TriggerRefused(Exception):
    def __init__(self, trigger: str, position: Position) -> None:
        super().__init__(f"{trigger} is not allowed while {position.state} at {position.stage}")
        self.trigger = trigger
        self.position = position


class _Token:
    """The object the machine moves; carries the guards' inputs for one dispatch."""

    def __init__(self, situation: Situation, request: Request) -> None:
        self.status = _key(situation.stage, situation.state)
        self.situation = situation
        self.request = request


def _key(stage: str, state: str) -> str:
    return f"{stage}:{state}"


def _split(key: str) -> Position:
    stage, state = key.split(":", 1)
    return Position(stage, State(state))


Guard = Callable[[Any], bool]


def _request(event: Any) -> Request:
    token: _Token = event.model
    return token.request


def _situation(event: Any) -> Situation:
    token: _Token = event.model
    return token.situation


def _is_looked_after(event: Any) -> bool:
    return _situation(event).case_type == CaseType.LOOKED_AFTER


def _not_yet_referred(event: Any) -> bool:
    return not _situation(event).referred


def _already_referred(event: Any) -> bool:
    return _situation(event).referred


def _within_reopen_window(event: Any) -> bool:
    until = _situation(event).reopen_until
    return until is not None and _request(event).now <= until


def _alongside(event: Any) -> bool:
    return _request(event).alongside


def _not_alongside(event: Any) -> bool:
    return not _request(event).alongside


def _heading_to(stage: str, *, default: bool) -> Guard:
    """Escalate goes to the next stage unless the IRO names a later one."""

    def guard(event: Any) -> bool:
        wanted = _request(event).to_stage
        return wanted == stage or (wanted is None and default)

    return guard


def _contact_named(stage: str, *, named: bool) -> Guard:
    """Entering a partner ladder's named stage needs its contact: without one, the dispute waits."""

    def guard(event: Any) -> bool:
        return (stage in _situation(event).named) == named

    return guard


def _enters(stage: str) -> Guard:
    """name_contact for the stage the dispute waits to enter enters it at once."""

    def guard(event: Any) -> bool:
        return _situation(event).waiting_for == stage and _request(event).contact_stage == stage

    return guard


def _enters_nothing(event: Any) -> bool:
    situation = _situation(event)
    return situation.waiting_for is None or _request(event).contact_stage != situation.waiting_for


def _add_stage_transitions(add: Callable[..., None], here: dict[State, str]) -> None:
    """What every stage of every ladder allows within itself: acting on it, holding it, handing it on,
    ending it, and the corrections."""
    open_here = [here[st] for st in State if st in OPEN_STATES]
    add(Trigger.ACKNOWLEDGE, here[State.AWAITING_RESPONSE], None)
    add(Trigger.RESPOND, here[State.AWAITING_RESPONSE], here[State.RESPONDED])
    add(
        Trigger.RESOLVE,
        [
            here[State.AWAITING_RESPONSE],
            here[State.RESPONDED],
            here[State.ON_HOLD],
            here[State.AWAITING_IRO_DECISION],
        ],
        here[State.RESOLVED],
    )
    add(Trigger.HOLD, here[State.AWAITING_RESPONSE], here[State.ON_HOLD])
    add(Trigger.RESUME, here[State.ON_HOLD], here[State.AWAITING_RESPONSE])
    add(Trigger.EXTEND, here[State.AWAITING_RESPONSE], None)
    add(Trigger.DEFER, here[State.AWAITING_RESPONSE], None)
    add(Trigger.WITHDRAW, open_here, here[State.WITHDRAWN])
    add(Trigger.REASSIGN, open_here, None)
    add(Trigger.REASSIGN_IRO, [*open_here, here[State.RESOLVED]], None)
    add(Trigger.AMEND, list(here.values()), None)
    add(Trigger.REDACT, list(here.values()), None)


class LadderMachine:
    """Every stage, state and trigger of one policy, with their guards."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        stages = list(policy.stage_ids)
        last = stages[-1]
        states = [_key(s, st) for s in stages for st in State]
        transitions: list[dict[str, Any]] = []

        def add(trigger: Trigger, source: Iterable[str] | str, dest: str | None, *guards: Guard) -> None:
            transitions.append(
                {
                    "trigger": trigger.value,
                    "source": list(source) if not isinstance(source, str) else source,
                    "dest": dest,
                    "conditions": list(guards),
                }
            )

        def arrival(stage: str) -> str:
            # Arriving at the last stage means the council's ladder is exhausted: the IRO decides.
            state = State.AWAITING_IRO_DECISION if stage == last else State.AWAITING_RESPONSE
            return _key(stage, state)

        open_states = [st for st in State if st in OPEN_STATES]
        for i, stage in enumerate(stages):
            here = {st: _key(stage, st) for st in State}
            _add_stage_transitions(add, here)

            not_referred = [here[st] for st in open_states if st != State.REFERRED]
            add(Trigger.REFER_TO_CAFCASS, not_referred, None, _is_looked_after, _not_yet_referred, _alongside)
            add(
                Trigger.REFER_TO_CAFCASS,
                not_referred,
                _key(last, State.REFERRED),
                _is_looked_after,
                _not_yet_referred,
                _not_alongside,
            )
            add(Trigger.CLOSE, here[State.REFERRED], here[State.CLOSED])
            # A referral made alongside the ladder closes with CAFCASS's outcome wherever the ladder stands.
            add(Trigger.CLOSE, not_referred, here[State.CLOSED], _already_referred)

            if i + 1 < len(stages):
                following = stages[i + 1]
                add(Trigger.TIMEOUT, here[State.AWAITING_RESPONSE], arrival(following))
                add(Trigger.REOPEN, here[State.RESOLVED], arrival(following), _within_reopen_window)
                for j, target in enumerate(stages[i + 1 :]):
                    add(
                        Trigger.ESCALATE,
                        [here[State.AWAITING_RESPONSE], here[State.RESPONDED], here[State.ON_HOLD]],
                        arrival(target),
                        _heading_to(target, default=j == 0),
                    )
            else:
                # At the top there is no higher stage: a reopened dispute goes back to the IRO's decision.
                add(Trigger.REOPEN, here[State.RESOLVED], arrival(stage), _within_reopen_window)

        for ladder in policy.ladders:
            named = {s.id for s in ladder.stages if isinstance(s, LadderStage) and s.is_named}
            self._add_partner_ladder(add, list(ladder.stage_ids), named)
            states += [_key(s.id, st) for s in ladder.stages for st in State]

        self._machine = Machine(
            model=None,
            states=states,
            transitions=transitions,
            initial=None,
            auto_transitions=False,
            send_event=True,
            model_attribute="status",
        )

    @staticmethod
    def _add_partner_ladder(add: Callable[..., None], stages: list[str], named: set[str]) -> None:
        """A partner ladder: the council's per-stage transitions, without CAFCASS (a stage of the council's
        own ladder only). Every stage is timed; moving up enters the next stage of the same ladder, or, when
        it is named with nobody named for it, stays and waits for the IRO (awaiting_iro_decision) until
        name_contact names someone; after the last stage, the IRO decides."""
        open_states = [st for st in State if st in OPEN_STATES]
        for i, stage in enumerate(stages):
            here = {st: _key(stage, st) for st in State}
            moving = [here[State.AWAITING_RESPONSE], here[State.RESPONDED], here[State.ON_HOLD]]
            _add_stage_transitions(add, here)
            waiting = here[State.AWAITING_IRO_DECISION]
            later = stages[i + 1 :]
            for target in later:
                if target in named:
                    add(Trigger.NAME_CONTACT, waiting, _key(target, State.AWAITING_RESPONSE), _enters(target))
            add(Trigger.NAME_CONTACT, [here[st] for st in open_states], None, _enters_nothing)
            if not later:
                # The last stage: after it, the IRO decides.
                add(Trigger.TIMEOUT, here[State.AWAITING_RESPONSE], waiting)
                add(Trigger.ESCALATE, moving, waiting)
                add(Trigger.REOPEN, here[State.RESOLVED], waiting, _within_reopen_window)
                continue
            following = later[0]
            for j, target in enumerate(later):
                enter, wait = [], []
                if target in named:
                    enter, wait = [_contact_named(target, named=True)], [_contact_named(target, named=False)]
                heading = _heading_to(target, default=j == 0)
                entering = _key(target, State.AWAITING_RESPONSE)
                add(Trigger.ESCALATE, moving, entering, heading, *enter)
                if wait:
                    add(Trigger.ESCALATE, moving, waiting, heading, *wait)
                if target == following:
                    add(Trigger.TIMEOUT, here[State.AWAITING_RESPONSE], entering, *enter)
                    add(Trigger.REOPEN, here[State.RESOLVED], entering, _within_reopen_window, *enter)
                    if wait:
                        add(Trigger.TIMEOUT, here[State.AWAITING_RESPONSE], waiting, *wait)
                        add(Trigger.REOPEN, here[State.RESOLVED], waiting, _within_reopen_window, *wait)

    def fire(self, trigger: str, situation: Situation, request: Request) -> Position:
        """Return where `trigger` takes the dispute, or raise TriggerRefused."""
        token = _Token(situation, request)
        event = self._machine.events.get(trigger)
        if event is None:
            raise TriggerRefused(trigger, Position(situation.stage, situation.state))
        try:
            moved = event.trigger(token)
        except MachineError:
            moved = False
        if not moved:
            raise TriggerRefused(trigger, Position(situation.stage, situation.state))
        return _split(token.status)

    def may(self, trigger: str, situation: Situation, request: Request) -> bool:
        """Whether `fire` would accept `trigger`: the same transitions and guards, without firing. Every
        read of a dispute asks this of each trigger the caller could use, and firing through the library
        costs several times more than reading its guards."""
        event = self._machine.events.get(trigger)
        if event is None:
            return False
        candidates = event.transitions.get(_key(situation.stage, situation.state), [])
        if not candidates:
            return False
        data = EventData(None, event, self._machine, _Token(situation, request), (), {})
        return any(all(c.check(data) for c in t.conditions) for t in candidates)

    def start(self, stage: str) -> Position:
        """Where a dispute raised at `stage` begins."""
        if stage == self.policy.last_stage.id:
            return Position(stage, State.AWAITING_IRO_DECISION)
        return Position(stage, State.AWAITING_RESPONSE)


_machines: dict[str, LadderMachine] = {}
_machines_lock = Lock()


def machine_for(policy: Policy) -> LadderMachine:
    """The shared machine of a policy; built once per policy text."""
    found = _machines.get(policy.sha256)
    if found is None:
        with _machines_lock:
            found = _machines.setdefault(policy.sha256, LadderMachine(policy))
    return found
