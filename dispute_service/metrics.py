"""Prometheus metrics. Counts come from the database at scrape time, so every replica reports the same."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.clock import Clock
from dispute_service.database import reading
from dispute_service.models import AuditEntry, Dispute, Notification
from dispute_service.sweep import overdue_deadlines
from states.vocabulary import OPEN_STATES, Trigger


class DisputeCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with reading(self._sessions) as session:
            by_stage = session.execute(
                select(Dispute.stage, func.count())
                .where(Dispute.state.in_([s.value for s in OPEN_STATES]))
                .group_by(Dispute.stage)
            ).all()
            by_kind = dict(
                session.execute(
                    select(AuditEntry.trigger, func.count())
                    .where(AuditEntry.trigger.in_([Trigger.TIMEOUT.value, Trigger.ESCALATE.value]))
                    .group_by(AuditEntry.trigger)
                ).all()
            )
            by_status = dict(
                session.execute(select(Notification.status, func.count()).group_by(Notification.status)).all()
            )
            overdue_now = overdue_deadlines(session, self._clock())
        open_disputes = GaugeMetricFamily("disputes_open", "Open disputes by stage", labels=["stage"])
        for stage, count in by_stage:
            open_disputes.add_metric([stage], count)
        yield open_disputes
        escalations = CounterMetricFamily("dispute_escalations", "Escalations by kind", labels=["kind"])
        escalations.add_metric(["automatic"], by_kind.get(Trigger.TIMEOUT.value, 0))
        escalations.add_metric(["manual"], by_kind.get(Trigger.ESCALATE.value, 0))
        yield escalations
        mail = GaugeMetricFamily("dispute_notifications", "Outbox notifications by status", labels=["status"])
        for status in ("pending", "sent", "failed"):
            mail.add_metric([status], by_status.get(status, 0))
        yield mail
        overdue = GaugeMetricFamily(
            "dispute_overdue_deadlines", "Deadlines more than five minutes past that nothing has acted on"
        )
        overdue.add_metric([], overdue_now)
        yield overdue


class Metrics:
    """One registry per app, so tests and several apps in one process never collide."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(DisputeCollector(sessions, clock))
        self.sweep_lag = Gauge(
            "dispute_sweep_lag_seconds",
            "How far behind its oldest passed escalation the last sweep started",
            registry=self.registry,
        )
        self.watchdog_overdue = Gauge(
            "dispute_watchdog_overdue",
            "Overdue deadlines seen by the last watchdog run",
            registry=self.registry,
        )
        self.sweep_runs = Gauge(
            "dispute_sweep_last_run_timestamp_seconds", "When the last sweep finished", registry=self.registry
        )
