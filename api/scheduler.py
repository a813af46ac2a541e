"""The in-process scheduler: APScheduler 3.11 with an in-memory job store, started in the lifespan.

No job per dispute: one sweep job reads the deadlines from the rows, so a timer survives a restart, a
crash and a second replica. The sweep runs every `SCHEDULER_INTERVAL_SECONDS` and also wakes at the next
deadline, so a short interval is not needed for punctuality.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.clock import Clock
from dispute_service.housekeeping import purge_expired
from dispute_service.metrics import Metrics
from dispute_service.sweep import SweepReport, sweep, watchdog
from states.policy import Policy

log = structlog.get_logger("api.scheduler")

WATCHDOG_SECONDS = 60
HOUSEKEEPING_SECONDS = 3600


class EscalationScheduler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        policy: Policy,
        clock: Clock,
        metrics: Metrics,
        interval: float,
        on_report: Callable[[SweepReport], None] | None = None,
        dispatcher: Callable[[], object] | None = None,
        dispatch_interval: float = 5.0,
    ) -> None:
        self._dispatcher = dispatcher
        self._dispatch_interval = dispatch_interval
        # One dispatch at a time; a wake during one asks it to go round once more (see run_dispatch).
        self._dispatch_lock = threading.Lock()
        self._dispatching = False
        self._dispatch_again = False
        self._on_report = on_report
        # Set at shutdown, so a sweep waiting for its next deadline stops waiting.
        self._stopping = threading.Event()
        self._sessions = sessions
        self._policy = policy
        self._clock = clock
        self._metrics = metrics
        self._interval = interval
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            # Threads of its own: shutdown then waits for a job still running, where the asyncio executor
            # cancels it and logs the cancellation as an error, with a traceback, at every stop.
            executors={"default": ThreadPoolExecutor(max_workers=10)},
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
        # First run an hour after start, as the watchdog's: a start writes nothing more, and a row purged an
        # hour late has only been kept an hour longer.
        self._scheduler.add_job(
            self.run_housekeeping, "interval", seconds=HOUSEKEEPING_SECONDS, id="housekeeping"
        )
        if self._dispatcher is not None:
            self._scheduler.add_job(
                self.run_dispatch,
                "interval",
                seconds=self._dispatch_interval,
                id="dispatch",
                next_run_time=datetime.now(UTC),
                # A tick during a long dispatch returns at once (it only asks for another round), rather
                # than being skipped with APScheduler's warning.
                max_instances=2,
            )
        self._scheduler.start()

    def shutdown(self) -> None:
        self._stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def wake_dispatch(self) -> None:
        """Send queued emails now: called straight after a commit that queued some.

        A dispatch already running is asked to go round once more. Moving the dispatch job's next run
        instead made APScheduler skip that run, with a warning, whenever one was still sending: a warning
        for nearly every request under load, and the new emails left to the next interval.
        """
        if self._dispatcher is not None and self._scheduler.running:
            # A one-off job on the scheduler's threads, so the request does not wait and shutdown does.
            self._scheduler.add_job(self.run_dispatch)

    def run_dispatch(self) -> None:
        if self._dispatcher is None:
            return
        with self._dispatch_lock:
            if self._dispatching:
                self._dispatch_again = True
                return
            self._dispatching = True
        structlog.contextvars.bind_contextvars(job="dispatch")
        try:
            while True:
                with self._dispatch_lock:
                    self._dispatch_again = False
                try:
                    self._dispatcher()
                except Exception:
                    log.exception("dispatch.failed")
                with self._dispatch_lock:
                    # Checked and cleared under one lock: a wake just after this starts a dispatch of its own.
                    if not self._dispatch_again:
                        self._dispatching = False
                        return
        except BaseException:
            with self._dispatch_lock:
                self._dispatching = False
            raise
        finally:
            structlog.contextvars.unbind_contextvars("job")

    def run_sweep(self) -> None:
        """Sweep, then keep sweeping at each next deadline that falls before the next interval run.

        Polling alone would add up to one interval of lateness. Re-scheduling the APScheduler job for the
        next deadline does not help under load: that run is skipped while this one is still finishing
        (max_instances=1) and the deadline waits a whole interval (measured: p50 lateness 0.95 s).
        """
        budget_ends = time.monotonic() + self._interval * 0.9
        structlog.contextvars.bind_contextvars(job="sweep")
        try:
            while True:
                report = sweep(self._sessions, self._policy, self._clock)
                self._record(report)
                if report.next_due_at is None:
                    return
                wait = (report.next_due_at - self._clock()).total_seconds()
                if time.monotonic() + max(wait, 0.0) >= budget_ends:
                    return
                if wait > 0:
                    if self._stopping.wait(wait):
                        return
        except Exception:
            log.exception("sweep.failed")
        finally:
            structlog.contextvars.unbind_contextvars("job")

    def _record(self, report: SweepReport) -> None:
        if self._on_report is not None:
            self._on_report(report)
        self._metrics.sweep_lag.set(report.lag_seconds)
        self._metrics.sweep_runs.set(datetime.now(UTC).timestamp())
        if report.fired or report.reminded:
            log.info("sweep.done", fired=len(report.fired), reminded=report.reminded, lag=report.lag_seconds)
            self.wake_dispatch()

    def run_watchdog(self) -> None:
        try:
            watchdog(self._sessions, self._clock(), self._metrics.watchdog_overdue.set)
        except Exception:
            log.exception("watchdog.failed")

    def run_housekeeping(self) -> None:
        try:
            report = purge_expired(self._sessions, self._clock())
        except Exception:
            log.exception("housekeeping.failed")
            return
        # Counts only, and only when there were some: an idle service logs nothing.
        if report.total:
            log.info("housekeeping.purged", **report.counts())
