"""The in-process scheduler: APScheduler 3.11 with an in-memory job store, started in the lifespan.

No job per dispute: one sweep job reads the deadlines from the rows (SPEC section 3, "Timers survive
everything"). The sweep runs every `SCHEDULER_INTERVAL_SECONDS` and also wakes at the next deadline, so a
short interval is not needed for punctuality.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.clock import Clock
from dispute_service.metrics import Metrics
from dispute_service.sweep import sweep, watchdog
from states.policy import Policy

log = structlog.get_logger("api.scheduler")

WATCHDOG_SECONDS = 60


class EscalationScheduler:
    def __init__(
        self, sessions: sessionmaker[Session], policy: Policy, clock: Clock, metrics: Metrics, interval: float
    ) -> None:
        self._sessions = sessions
        self._policy = policy
        self._clock = clock
        self._metrics = metrics
        self._interval = interval
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            # A late run is still a run: APScheduler's default grace of 1 s silently drops it.
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        """Start inside the event loop; the first sweep runs at once, catching up on any downtime."""
        self._scheduler.add_job(
            self.run_sweep, "interval", seconds=self._interval, id="sweep", next_run_time=datetime.now(UTC)
        )
        self._scheduler.add_job(self.run_watchdog, "interval", seconds=WATCHDOG_SECONDS, id="watchdog")
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def wake(self) -> None:
        """Run the sweep now, e.g. after a commit that set an earlier deadline."""
        if self._scheduler.running:
            self._scheduler.modify_job("sweep", next_run_time=datetime.now(UTC))

    def run_sweep(self) -> None:
        structlog.contextvars.bind_contextvars(job="sweep")
        try:
            report = sweep(self._sessions, self._policy, self._clock)
        except Exception:
            log.exception("sweep.failed")
            return
        finally:
            structlog.contextvars.unbind_contextvars("job")
        self._metrics.sweep_lag.set(report.lag_seconds)
        self._metrics.sweep_runs.set(datetime.now(UTC).timestamp())
        if report.fired or report.reminded:
            log.info("sweep.done", fired=len(report.fired), reminded=report.reminded, lag=report.lag_seconds)
        self._wake_at(report.next_due_at)

    def _wake_at(self, due: datetime | None) -> None:
        """Polling alone would add up to one interval of lateness; wake exactly at the next deadline."""
        if due is None or not self._scheduler.running:
            return
        job = self._scheduler.get_job("sweep")
        if job is not None and job.next_run_time is not None and due < job.next_run_time:
            job.modify(next_run_time=max(due, datetime.now(UTC)))

    def run_watchdog(self) -> None:
        try:
            watchdog(self._sessions, self._clock(), self._metrics.watchdog_overdue.set)
        except Exception:
            log.exception("watchdog.failed")
