"""Hypothesis drives random sequences of triggers, actors and clock moves at real disputes on a real database.

Whatever the sequence: every change adds exactly one audit entry and one version, every bookkeeping entry
(a reminder, a deferral) adds an audit entry and no version, every refusal changes nothing, the chain
always verifies, and what GET offers as allowed is exactly what would be accepted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.access import Actor
from dispute_service.audit import verify_dispute
from dispute_service.errors import DomainError
from dispute_service.inputs import ActionInput
from dispute_service.models import AuditEntry, AuditText, Dispute, Notification
from dispute_service.outbox import people_with_role
from dispute_service.sweep import sweep
from states.policy import Policy, load_default_policy
from states.vocabulary import ACTION_TRIGGERS, BOOKKEEPING_TRIGGERS
from tests.factories import (
    ADMIN,
    HOS,
    IRO,
    IRO2_EMAIL,
    IRO_EMAIL,
    IRO_MANAGER,
    TM,
    TM2_EMAIL,
    raise_dispute,
)

ACTORS = [IRO, TM, HOS, IRO_MANAGER, ADMIN]
FULL_INPUT = ActionInput(
    reason="r",
    response="r",
    outcome="o",
    outcome_code="other",
    working_days=2,
    review_on=None,
    owner_email=TM2_EMAIL,
    iro_email=IRO2_EMAIL,
    referred_on=None,
    child_ref="LCS-9",
    text_id=None,
)


def fields_for(trigger: str, now: datetime, session: Session, dispute: Dispute) -> ActionInput:
    """Inputs that are valid for the dispute as it stands, so an offered trigger is refused only for its
    state, never for its inputs."""
    # Dates that make sense on the day: a hold is reviewed later, a referral was made on or before today.
    today = now.astimezone(ZoneInfo("Europe/London")).date()
    extra: dict[str, Any] = {}
    if trigger == "hold":
        extra["review_on"] = today + timedelta(days=30)
    if trigger == "refer_to_cafcass":
        extra["referred_on"] = today
    if trigger == "redact":
        # The oldest text not yet redacted: there is always one, as every redaction brings its reason.
        extra["text_id"] = session.scalar(
            select(AuditText.id)
            .where(AuditText.dispute_id == dispute.id, AuditText.redacted_at.is_(None))
            .order_by(AuditText.id)
            .limit(1)
        )
    if trigger == "reassign":
        # Another active holder of the stage's role who is not the IRO, or the owner again if none.
        holders = [p for p in people_with_role(session, dispute.owner_role) if p != dispute.iro_email]
        others = [p for p in holders if p != dispute.owner_email]
        extra["owner_email"] = (others or holders or [None])[0]
    if trigger == "reassign_iro":
        extra["iro_email"] = IRO2_EMAIL if dispute.iro_email == IRO_EMAIL else IRO_EMAIL
    return ActionInput(**{**FULL_INPUT.__dict__, **extra})


class DisputeLife(RuleBasedStateMachine):
    sessions: sessionmaker[Session]
    policy: Policy
    clock: Any

    @initialize()
    def raise_one(self) -> None:
        self.dispute_id = raise_dispute(self.sessions, self.policy, self.clock.now).dispute.id
        self.changes = 1

    def _state(self) -> tuple[Any, ...]:
        with self.sessions() as session:
            row = session.get(Dispute, self.dispute_id)
            assert row is not None
            audit = session.scalar(select(func.count()).where(AuditEntry.dispute_id == self.dispute_id))
            mails = session.scalar(select(func.count()).select_from(Notification))
            return row.version, row.stage, row.state, row.due_at, row.escalate_at, audit, mails

    @rule(trigger=st.sampled_from([t.value for t in ACTION_TRIGGERS]), who=st.sampled_from(ACTORS))
    def act(self, trigger: str, who: Actor) -> None:
        before = self._state()
        offered = (
            transactions.get_dispute(
                self.sessions, self.policy, self.dispute_id, who, self.clock.now
            ).allowed_actions
            if self._can_read(who)
            else []
        )
        try:
            transactions.apply_trigger(
                self.sessions,
                self.policy,
                self.dispute_id,
                trigger,
                who,
                self._fields_for(trigger),
                self.clock.now,
            )
        except DomainError:
            assert self._state() == before, f"refused {trigger} by {who.email} changed something"
            # A trigger that was offered is never refused for its state; only its inputs can be wrong here.
            assert trigger not in offered, f"{trigger} was offered to {who.email} but refused"
            return
        assert trigger in offered, f"{trigger} succeeded for {who.email} but was not offered"
        self.changes += 1
        version, *_ = self._state()
        assert version == before[0] + 1

    def _fields_for(self, trigger: str) -> ActionInput:
        with self.sessions() as session:
            dispute = session.get(Dispute, self.dispute_id)
            assert dispute is not None
            return fields_for(trigger, self.clock.now, session, dispute)

    def _can_read(self, who: Actor) -> bool:
        try:
            transactions.get_dispute(self.sessions, self.policy, self.dispute_id, who, self.clock.now)
        except DomainError:
            return False
        return True

    @rule(days=st.integers(min_value=0, max_value=12))
    def time_passes_and_the_sweep_runs(self, days: int) -> None:
        self.clock.advance(days=days, hours=1)
        fired = sweep(self.sessions, self.policy, self.clock).fired
        # A deferred escalation is bookkeeping, not a change.
        self.changes += sum(f.dispute_id == self.dispute_id and f.trigger != "defer" for f in fired)

    @invariant()
    def one_version_per_change_and_the_chain_verifies(self) -> None:
        if not hasattr(self, "dispute_id"):
            return
        with self.sessions() as session:
            row = session.get(Dispute, self.dispute_id)
            assert row is not None
            assert list(verify_dispute(session, row)) == []
            entries = session.execute(
                select(AuditEntry.seq, AuditEntry.trigger)
                .where(AuditEntry.dispute_id == row.id)
                .order_by(AuditEntry.seq)
            ).all()
        assert [seq for seq, _ in entries] == list(range(1, len(entries) + 1))
        # One entry and one version per change; reminders and deferrals add entries and no version.
        changes = [trigger for _, trigger in entries if trigger not in BOOKKEEPING_TRIGGERS]
        assert len(changes) == self.changes
        assert row.version == self.changes


def test_random_lives_of_a_dispute(
    sessions: sessionmaker[Session], staff: list[str], clock: Any, backend: str
) -> None:
    DisputeLife.sessions = sessions
    DisputeLife.policy = load_default_policy()
    DisputeLife.clock = clock
    DisputeLife.TestCase.settings = settings(
        max_examples=25 if backend == "sqlite" else 10,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    DisputeLife.TestCase().runTest()
