"""The sweep on an injected clock: on time, exactly once, and the closure-day rule."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.errors import NotAllowedNow, VersionConflict
from dispute_service.inputs import ActionInput
from dispute_service.models import AuditEntry, Dispute, Notification, StageEntry
from dispute_service.queries import DisputeSnapshot
from dispute_service.sweep import overdue_deadlines, sweep
from states.policy import Policy, parse_policy
from tests.factories import IRO, TM, fetch, fire_timer
from tests.recording import record_transactions

LONDON = ZoneInfo("Europe/London")


def run_until(
    sessions: sessionmaker[Session], policy: Policy, clock: Any, end: datetime, step: timedelta
) -> None:
    while clock.now < end:
        clock.advance(seconds=step.total_seconds())
        sweep(sessions, policy, clock)


def audit(sessions: sessionmaker[Session], dispute_id: Any) -> list[AuditEntry]:
    with sessions() as session:
        query = select(AuditEntry).where(AuditEntry.dispute_id == dispute_id).order_by(AuditEntry.seq)
        return list(session.scalars(query))


def test_christmas_2017_climbs_to_cafcass_by_timeouts_alone(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = datetime(2017, 12, 22, 10, 0, tzinfo=LONDON).astimezone(UTC)
    d = raise_one().dispute
    # Every 15 minutes for seven weeks: the sweep runs at 09:00 sharp on each escalation day.
    run_until(sessions, policy, clock, datetime(2018, 2, 10, tzinfo=UTC), timedelta(minutes=15))

    entries = audit(sessions, d.id)
    timeouts = [e for e in entries if e.trigger == "timeout"]
    assert [e.at.astimezone(LONDON).replace(tzinfo=None) for e in timeouts] == [
        datetime(2018, 1, 4, 9, 0),
        datetime(2018, 1, 12, 9, 0),
        datetime(2018, 1, 22, 9, 0),
        datetime(2018, 1, 30, 9, 0),
        datetime(2018, 2, 7, 9, 0),
    ]
    assert [e.to_stage for e in timeouts] == [
        "team_manager",
        "head_of_corporate_parenting",
        "head_of_service",
        "assistant_director",
        "cafcass",
    ]
    assert all(e.channel == "scheduler" and e.actor == "system" for e in timeouts)
    # Each owner reminder is a bookkeeping entry of its own, among the changes.
    reminded = [e for e in entries if e.trigger == "remind"]
    assert len(reminded) == 10 and all(e.channel == "scheduler" and e.actor == "system" for e in reminded)
    assert [e.trigger for e in entries if e.trigger != "remind"] == ["raise", *["timeout"] * 5]
    with sessions() as session:
        final = session.get(Dispute, d.id)
        assert final is not None
        assert (final.stage, final.state, final.referred_on) == ("cafcass", "awaiting_iro_decision", None)
        exhausted = session.scalars(
            select(Notification.recipient).where(Notification.template == "ladder_exhausted")
        )
        assert sorted(exhausted) == sorted([IRO.email, "iro.manager@example.gov.uk"])
        reminders = session.scalars(select(Notification).where(Notification.template == "reminder")).all()
        # Two reminders per timed stage (2 working days before, and on the due date), each queued once.
        assert len(reminders) == 10
        assert len({r.message_id for r in reminders}) == 10


def test_a_closure_day_added_later_moves_the_escalation_and_the_audit_says_why(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = datetime(2017, 12, 22, 10, 0, tzinfo=UTC)
    d = raise_one().dispute
    assert d.escalate_at == datetime(2018, 1, 4, 9, 0, tzinfo=UTC)
    # The council closes on Thursday 4 January, after the dispute was raised.
    closed = parse_policy(policy.text.replace("closure_days = []", 'closure_days = ["2018-01-04"]'))
    assert closed.calendar.closure_days == (date(2018, 1, 4),)
    run_until(sessions, closed, clock, datetime(2018, 1, 5, 12, 0, tzinfo=UTC), timedelta(minutes=30))

    entries = [e for e in audit(sessions, d.id) if e.trigger != "remind"]
    assert [e.trigger for e in entries] == ["raise", "defer", "timeout"]
    defer, timeout = entries[1], entries[2]
    assert defer.at == datetime(2018, 1, 4, 9, 0, tzinfo=UTC)
    assert (defer.escalate_at_before, defer.escalate_at_after) == (
        datetime(2018, 1, 4, 9, 0, tzinfo=UTC),
        datetime(2018, 1, 5, 9, 0, tzinfo=UTC),
    )
    assert "2018-01-04 is no longer a working day (closure day)" in defer.details
    assert timeout.at == datetime(2018, 1, 5, 9, 0, tzinfo=UTC) and timeout.to_stage == "team_manager"
    # The deferral is bookkeeping: raise and timeout are the dispute's only two versions.
    assert fetch(sessions, d.id).version == 2


def test_a_sweep_after_downtime_escalates_each_overdue_dispute_once(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = datetime(2018, 1, 8, 10, 0, tzinfo=UTC)
    raised = [raise_one(child_ref=f"LCS-{i}").dispute for i in range(5)]
    clock.now = datetime(2018, 1, 16, 12, 0, tzinfo=UTC)  # a day past every escalation moment
    with sessions.begin() as session:
        assert overdue_deadlines(session, clock.now) == 10  # five escalations and five reminders
    first = sweep(sessions, policy, clock)
    second = sweep(sessions, policy, clock)
    assert sorted(f.dispute_id for f in first.fired) == sorted(d.id for d in raised)
    assert all(f.trigger == "timeout" for f in first.fired) and second.fired == []
    with sessions.begin() as session:
        assert overdue_deadlines(session, clock.now) == 0
    for d in raised:
        assert [e.trigger for e in audit(sessions, d.id)] == ["raise", "timeout"]


def race_at_the_deadline(
    sessions: sessionmaker[Session], policy: Policy, clock: Any, d: Dispute
) -> dict[str, Any]:
    barrier = threading.Barrier(2)
    outcome: dict[str, Any] = {}

    def manual() -> None:
        barrier.wait()
        try:
            transactions.apply_trigger(
                sessions,
                policy,
                d.id,
                "escalate",
                IRO,
                ActionInput(reason="now"),
                clock.now,
                expected_version=d.version,
            )
            outcome["api"] = "won"
        except (VersionConflict, NotAllowedNow) as exc:
            outcome["api"] = type(exc).__name__

    def scheduled() -> None:
        barrier.wait()
        outcome["sweep"] = sum(f.dispute_id == d.id for f in sweep(sessions, policy, clock).fired)

    threads = [threading.Thread(target=manual), threading.Thread(target=scheduled)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcome


def test_a_manual_action_racing_the_timeout_exactly_one_wins(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    winners = []
    for attempt in range(10):
        clock.now = datetime(2018, 1, 8, 10, 0, tzinfo=UTC) + timedelta(days=attempt * 30)
        d = raise_one(child_ref=f"LCS-R{attempt}").dispute
        assert d.escalate_at is not None
        clock.now = d.escalate_at
        outcome = race_at_the_deadline(sessions, policy, clock, d)
        moves = [e for e in audit(sessions, d.id) if e.trigger in ("timeout", "escalate")]
        assert len(moves) == 1, outcome
        # The loser is a no-op (the sweep) or a 409 (the API).
        assert (outcome["api"] == "won") != (outcome["sweep"] == 1), outcome
        assert moves[0].to_stage == "team_manager"
        winners.append(moves[0].trigger)
    assert set(winners) <= {"timeout", "escalate"}


def test_the_watchdog_logs_an_error_and_reports_overdue_deadlines(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], clock: Any
) -> None:
    from structlog.testing import capture_logs

    from dispute_service.sweep import watchdog

    clock.now = datetime(2018, 1, 8, 10, 0, tzinfo=UTC)
    raise_one()
    seen: list[int] = []
    with capture_logs() as logs:
        # Four minutes after the escalation moment only the old reminder counts; six minutes after, both.
        assert watchdog(sessions, datetime(2018, 1, 16, 9, 4, tzinfo=UTC), seen.append) == 1
        assert watchdog(sessions, datetime(2018, 1, 16, 9, 6, tzinfo=UTC), seen.append) == 2
    assert seen == [1, 2]
    assert [(e["event"], e["log_level"], e["overdue"]) for e in logs] == [
        ("watchdog.deadlines_overdue", "error", 1),
        ("watchdog.deadlines_overdue", "error", 2),
    ]


def test_the_sweep_pages_through_more_deadlines_than_one_batch(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = datetime(2018, 1, 8, 10, 0, tzinfo=UTC)
    raised = [raise_one(child_ref=f"LCS-P{i}").dispute.id for i in range(5)]
    clock.now = datetime(2018, 1, 20, tzinfo=UTC)
    report = sweep(sessions, policy, clock, batch=2)
    assert sorted(f.dispute_id for f in report.fired) == sorted(raised)
    assert report.reminded == 0  # the reminders belonged to the stage each dispute has left


def test_timeout_only_fires_once_its_time_has_come_and_once_per_stage_entry(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = datetime(2017, 12, 22, 10, 0, tzinfo=UTC)
    d = raise_one().dispute
    assert fire_timer(sessions, policy, d.id, 1, datetime(2018, 1, 4, 8, 59, tzinfo=UTC)) is None
    assert fire_timer(sessions, policy, d.id, 1, datetime(2018, 1, 4, 9, 0, tzinfo=UTC)) == "timeout"
    moved = fetch(sessions, d.id)
    assert (moved.stage, moved.stage_entry_seq) == ("team_manager", 2)
    # A stale claim on the old stage entry is refused even though the new stage is also awaiting a response.
    assert fire_timer(sessions, policy, d.id, 1, datetime(2018, 2, 1, tzinfo=UTC)) is None
    with sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.dispute_id == d.id).order_by(AuditEntry.seq)
        ).all()
        assert [(e.trigger, e.channel, e.actor) for e in entries] == [
            ("raise", "api", IRO.email),
            ("timeout", "scheduler", "system"),
        ]
        assert entries[1].escalate_at_before == datetime(2018, 1, 4, 9, 0, tzinfo=UTC)
        assert entries[1].due_at_after == datetime(2018, 1, 11, 17, 0, tzinfo=UTC)
        stages = session.scalars(
            select(StageEntry.stage).where(StageEntry.dispute_id == d.id).order_by(StageEntry.seq)
        ).all()
        assert list(stages) == ["quality_assurance", "team_manager"]


def test_each_timer_fires_in_one_transaction_of_its_own(
    raise_one: Callable[..., DisputeSnapshot],
    sessions: sessionmaker[Session],
    engine: Engine,
    policy: Policy,
    clock: Any,
) -> None:
    clock.now = datetime(2017, 12, 22, 10, 0, tzinfo=UTC)
    ids = {raise_one(child_ref=f"LCS-{i}").dispute.id for i in range(3)}
    clock.now = datetime(2018, 1, 4, 9, 0, tzinfo=UTC)
    with record_transactions(engine) as seen:
        report = sweep(sessions, policy, clock)
    assert {f.dispute_id for f in report.fired} == ids
    # Every write of a firing (the dispute, its stage entries, its audit entry, its emails) is in the one
    # transaction that claimed it; the sweep's other transactions only read.
    writing = seen.writing()
    assert len(writing) == 3
    for statements in writing:
        claim = statements[0]
        assert claim.startswith("SELECT") and "FROM disputes" in claim
        if engine.dialect.name == "postgresql":
            assert "FOR UPDATE OF disputes SKIP LOCKED" in claim
        tables = {s.split()[2] for s in statements if s.startswith("INSERT")} | {
            s.split()[1] for s in statements if s.startswith("UPDATE")
        }
        assert {"disputes", "stage_entries", "audit_entries", "notifications"} <= tables


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON).astimezone(UTC)


def reminders_of(sessions: sessionmaker[Session], dispute_id: Any) -> list[tuple[datetime, dict[str, Any]]]:
    return [(e.at, json.loads(e.details)) for e in audit(sessions, dispute_id) if e.trigger == "remind"]


def mails(sessions: sessionmaker[Session], template: str) -> list[str]:
    with sessions() as session:
        query = select(Notification.recipient).where(Notification.template == template)
        return list(session.scalars(query.order_by(Notification.id)))


def test_a_hold_reminds_the_iro_on_its_review_date_and_each_working_day_after_until_it_resumes(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = local(2018, 3, 5, 10, 0)
    d = raise_one().dispute
    transactions.apply_trigger(
        sessions, policy, d.id, "hold", IRO, ActionInput(reason="r", review_on=date(2018, 3, 9)), clock.now
    )
    # Friday 9 March is the review date; the weekend is skipped; the IRO resumes on Tuesday at noon.
    run_until(sessions, policy, clock, local(2018, 3, 13, 12, 0), timedelta(minutes=30))
    transactions.apply_trigger(sessions, policy, d.id, "resume", IRO, ActionInput(), clock.now)
    run_until(sessions, policy, clock, local(2018, 3, 16, 12, 0), timedelta(minutes=30))

    reminded = reminders_of(sessions, d.id)
    assert [at for at, _ in reminded if _["reminder"] == "hold_review"] == [
        local(2018, 3, 9, 9, 0),
        local(2018, 3, 12, 9, 0),
        local(2018, 3, 13, 9, 0),
    ]
    assert all(details["to"] == "iro" for _, details in reminded if details["reminder"] == "hold_review")
    assert mails(sessions, "hold_review") == [IRO.email] * 3
    # Hold and resume are the only changes after the raise: the reminders left the version alone.
    assert fetch(sessions, d.id).version == 3


def test_a_dispute_at_the_end_of_the_ladder_reminds_the_iro_after_remind_iro_after_and_again(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = local(2018, 3, 5, 10, 0)
    d = raise_one(start_stage="assistant_director", reason="urgent").dispute
    moved = transactions.apply_trigger(
        sessions, policy, d.id, "escalate", IRO, ActionInput(reason="r"), clock.now
    ).dispute
    assert (moved.stage, moved.state) == ("cafcass", "awaiting_iro_decision")
    # remind_iro_after is 5 working days: 17:00 on Monday 12 March, then Monday 19 March.
    run_until(sessions, policy, clock, local(2018, 3, 20, 12, 0), timedelta(hours=1))
    reminded = reminders_of(sessions, d.id)
    assert [at for at, _ in reminded] == [local(2018, 3, 12, 17, 0), local(2018, 3, 19, 17, 0)]
    assert all(
        details == {**details, "reminder": "decision_reminder", "to": "iro"} for _, details in reminded
    )
    assert mails(sessions, "decision_reminder") == [IRO.email] * 2
    with sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.trigger == "remind")).all()
        assert all((e.actor, e.channel) == ("system", "scheduler") for e in entries)


def test_an_iro_reminder_whose_day_became_a_closure_day_waits_for_the_next_working_day_and_says_so(
    raise_one: Callable[..., DisputeSnapshot], sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    clock.now = local(2018, 3, 5, 10, 0)
    d = raise_one().dispute
    transactions.apply_trigger(sessions, policy, d.id, "respond", TM, ActionInput(response="done"), clock.now)
    assert fetch(sessions, d.id).next_reminder_at == local(2018, 3, 12, 17, 0)
    # The council closes on Monday 12 March after the response came in.
    closed = parse_policy(policy.text.replace("closure_days = []", 'closure_days = ["2018-03-12"]'))
    run_until(sessions, closed, clock, local(2018, 3, 13, 18, 0), timedelta(hours=1))

    entries = [e for e in audit(sessions, d.id) if e.trigger in ("defer", "remind")]
    assert [(e.trigger, e.at) for e in entries] == [
        ("defer", local(2018, 3, 12, 17, 0)),
        ("remind", local(2018, 3, 13, 9, 0)),
    ]
    deferred = json.loads(entries[0].details)
    assert (deferred["reminder"], deferred["to"]) == ("iro_reminder", "iro")
    assert "2018-03-12 is no longer a working day (closure day)" in deferred["reason"]
    assert mails(sessions, "iro_reminder") == [IRO.email]
    assert fetch(sessions, d.id).version == 2  # raise and respond; the deferral and reminder are bookkeeping
