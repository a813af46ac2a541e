"""Who may use which trigger, from their roles and their relation to one dispute.

Two different questions, asked in the order refusals are given: `may_ever_use` decides 403 (this person
may never use this trigger on this dispute), and `allowed_actions` adds the machine's answer for *now*
(409 when refused).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from states.machine import LadderMachine, Request, Situation
from states.vocabulary import ACTION_TRIGGERS, EXTERNAL, Trigger


@dataclass(frozen=True)
class Relation:
    roles: frozenset[str]
    is_iro: bool = False  # the dispute's own IRO
    is_owner: bool = False  # owns the current stage, by name or by role
    named_stage: bool = False  # the current stage is a partner's, owned by a named external contact

    @property
    def acts_as_iro(self) -> bool:
        # An IRO manager may act for the dispute's IRO: they supervise every IRO's disputes.
        return self.is_iro or "iro_manager" in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


_RULES: dict[Trigger, Callable[[Relation], bool]] = {
    Trigger.ACKNOWLEDGE: lambda r: r.is_owner,
    Trigger.RESPOND: lambda r: r.is_owner,
    Trigger.RESOLVE: lambda r: r.is_owner or r.acts_as_iro,
    Trigger.REOPEN: lambda r: r.acts_as_iro,
    Trigger.ESCALATE: lambda r: r.acts_as_iro,
    Trigger.REFER_TO_CAFCASS: lambda r: r.acts_as_iro,
    Trigger.CLOSE: lambda r: r.acts_as_iro,
    Trigger.WITHDRAW: lambda r: r.acts_as_iro,
    Trigger.HOLD: lambda r: r.acts_as_iro,
    Trigger.RESUME: lambda r: r.acts_as_iro,
    Trigger.EXTEND: lambda r: r.acts_as_iro,
    # A contact owns a partner's stage but does not hand it on: that is the IRO's act (SPEC 10), to another
    # contact of the same organisation. A council stage is handed on by its owner or a manager, as before.
    Trigger.REASSIGN: lambda r: (
        (r.is_owner and EXTERNAL not in r.roles)
        or "iro_manager" in r.roles
        or r.is_admin
        or (r.named_stage and r.is_iro)
    ),
    Trigger.REASSIGN_IRO: lambda r: "iro_manager" in r.roles or r.is_admin,
    Trigger.AMEND: lambda r: r.acts_as_iro or r.is_admin,
    Trigger.REDACT: lambda r: r.is_admin,
    Trigger.NAME_CONTACT: lambda r: r.acts_as_iro,
}


def may_ever_use(trigger: str, relation: Relation) -> bool:
    try:
        rule = _RULES.get(Trigger(trigger))
    except ValueError:
        return False
    return rule is not None and rule(relation)


def allowed_actions(
    machine: LadderMachine, situation: Situation, relation: Relation, request: Request
) -> list[str]:
    """The triggers this person may use on this dispute now, in a stable order."""
    return [
        t.value
        for t in ACTION_TRIGGERS
        if may_ever_use(t, relation) and machine.may(t.value, situation, _probe(t, request))
    ]


def _probe(trigger: Trigger, request: Request) -> Request:
    # Guards on caller-chosen inputs (a named to_stage, a referral alongside) must not hide a trigger
    # that is available with its defaults.
    if trigger is Trigger.REFER_TO_CAFCASS:
        return Request(now=request.now, alongside=False)
    return Request(now=request.now)
