"""The scheduler inside the real app: started by the lifespan, driven by the injected clock."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from api.app import Mode, create_app
from api.scheduler import EscalationScheduler
from dispute_service.config import Settings
from dispute_service.database import make_engine, make_session_factory
from dispute_service.logs import quiet_libraries
from dispute_service.metrics import Metrics
from dispute_service.models import WebSession
from states.policy import Policy
from tests.factories import IRO_EMAIL, METRICS_TOKEN, SCRAPER, raise_body


@pytest.fixture
def live(settings: Settings, clock: Any, staff: list[str]) -> Iterator[TestClient]:
    clock.now = datetime(2017, 12, 22, 10, 0, tzinfo=UTC)
    enabled = settings.model_copy(
        update={"scheduler_enabled": True, "scheduler_interval_seconds": 1, "metrics_token": METRICS_TOKEN}
    )
    with TestClient(create_app(enabled, mode=Mode.STRICT, clock=clock)) as client:
        yield client


def wait_for(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_the_sweep_escalates_once_the_clock_passes_escalate_at(
    live: TestClient, token_for: Callable[[str], dict[str, str]], clock: Any
) -> None:
    headers = token_for(IRO_EMAIL)
    d = live.post("/api/v1/disputes", json=raise_body(), headers=headers).json()
    assert live.get("/readyz").json() == {"status": "ok", "database": "ok", "scheduler": "ok"}

    clock.now = datetime(2018, 1, 4, 9, 0, tzinfo=UTC)

    def escalated() -> bool:
        return bool(
            live.get(f"/api/v1/disputes/{d['id']}", headers=headers).json()["stage"] == "team_manager"
        )

    wait_for(escalated)
    audit = live.get(f"/api/v1/disputes/{d['id']}/audit", headers=headers).json()["items"]
    assert [(e["trigger"], e["channel"], e["actor"]) for e in audit] == [
        ("raise", "api", IRO_EMAIL),
        ("timeout", "scheduler", "system"),
    ]
    metrics = live.get("/metrics", headers=SCRAPER).text
    assert 'disputes_open{stage="team_manager"} 1.0' in metrics
    assert 'dispute_escalations_total{kind="automatic"} 1.0' in metrics
    assert 'dispute_escalations_total{kind="manual"} 0.0' in metrics
    assert "dispute_overdue_deadlines 0.0" in metrics
    assert "dispute_sweep_lag_seconds" in metrics


@pytest.fixture
def production_log_levels() -> Iterator[None]:
    """The library log levels the service runs with, put back afterwards."""
    names = ("transitions", "uvicorn.access", "apscheduler", "apscheduler.scheduler")
    saved = {name: logging.getLogger(name).level for name in names}
    quiet_libraries()
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_an_idle_scheduler_logs_nothing_at_info(
    settings: Settings,
    clock: Any,
    staff: list[str],
    caplog: pytest.LogCaptureFixture,
    production_log_levels: None,
) -> None:
    fast = settings.model_copy(
        update={
            "scheduler_enabled": True,
            "scheduler_interval_seconds": 0.1,
            "dispatch_interval_seconds": 0.1,
        }
    )
    with TestClient(create_app(fast, mode=Mode.STRICT, clock=clock)) as client:
        metrics = client.app.state.metrics  # type: ignore[attr-defined]

        def last_sweep() -> float:
            return float(metrics.registry.get_sample_value("dispute_sweep_last_run_timestamp_seconds") or 0)

        caplog.set_level(logging.INFO)
        wait_for(lambda: last_sweep() > 0)
        caplog.clear()
        with capture_logs() as events:
            first = last_sweep()
            time.sleep(1.0)  # about ten sweeps and ten dispatcher runs
            assert last_sweep() > first, "the scheduler ran"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []
    assert [e for e in events if e["log_level"] != "debug"] == []


def test_the_sweep_lag_is_how_long_past_its_deadline_the_oldest_escalation_fired(
    settings: Settings, clock: Any, staff: list[str], token_for: Callable[[str], dict[str, str]]
) -> None:
    # The scheduler is left stopped and one sweep is run by hand, so the clock alone decides the lag: a
    # running one would sweep again and set it back to 0 once nothing is due.
    scraped = settings.model_copy(update={"metrics_token": METRICS_TOKEN})
    with TestClient(create_app(scraped, mode=Mode.STRICT, clock=clock)) as client:
        early = client.post("/api/v1/disputes", json=raise_body(), headers=token_for(IRO_EMAIL)).json()
        clock.advance(days=1)
        client.post("/api/v1/disputes", json=raise_body(), headers=token_for(IRO_EMAIL))
        state = client.app.state  # type: ignore[attr-defined]
        scheduler = EscalationScheduler(state.sessions, state.policy, clock, state.metrics, interval=60)

        # The oldest deadline passed a day and 1234 seconds ago; the later one too, by less.
        clock.now = datetime.fromisoformat(early["escalate_at"]) + timedelta(seconds=1234, days=1)
        scheduler.run_sweep()

        metrics = client.get("/metrics", headers=SCRAPER).text
    lag = [line for line in metrics.splitlines() if line.startswith("dispute_sweep_lag_seconds ")]
    assert lag == [f"dispute_sweep_lag_seconds {86400 + 1234}.0"]
    assert 'dispute_escalations_total{kind="automatic"} 2.0' in metrics


def test_a_sweep_that_outlasts_its_interval_logs_nothing(
    settings: Settings,
    clock: Any,
    staff: list[str],
    caplog: pytest.LogCaptureFixture,
    production_log_levels: None,
) -> None:
    """On a busy machine a sweep can take longer than its interval; APScheduler then skips a run, by
    design, and would warn about it each time."""

    def slow_clock() -> datetime:
        time.sleep(0.15)  # every sweep reads the clock, so each one outlasts the 0.1 s interval
        now: datetime = clock()
        return now

    fast = settings.model_copy(update={"scheduler_enabled": True, "scheduler_interval_seconds": 0.1})
    with TestClient(create_app(fast, mode=Mode.STRICT, clock=slow_clock)):
        caplog.set_level(logging.INFO)
        caplog.clear()
        time.sleep(1.0)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")] == []


def test_housekeeping_runs_every_hour(live: TestClient) -> None:
    scheduler = live.app.state.scheduler  # type: ignore[attr-defined]
    job = scheduler._scheduler.get_job("housekeeping")
    assert job is not None and job.trigger.interval == timedelta(hours=1)


def test_housekeeping_on_the_schedulers_clock_logs_the_counts_and_nothing_else(
    sessions: sessionmaker[Session], policy: Policy, clock: Any
) -> None:
    scheduler = EscalationScheduler(sessions, policy, clock, Metrics(sessions, clock), interval=60)
    signed_in = clock.now
    with sessions.begin() as session:
        session.add(
            WebSession(
                id="a" * 64,
                email=IRO_EMAIL,
                csrf="b" * 43,
                created_at=signed_in,
                last_seen_at=signed_in,
                ended_at=signed_in,
            )
        )
    with capture_logs() as events:
        scheduler.run_housekeeping()  # the sign-out was a moment ago: nothing to delete, nothing logged
        clock.advance(days=1, minutes=1)
        scheduler.run_housekeeping()
    assert events == [
        {
            "event": "housekeeping.purged",
            "log_level": "info",
            "web_sessions": 1,
            "link_codes": 0,
            "link_sessions": 0,
            "idempotency_keys": 0,
        }
    ]
    with sessions() as session:
        assert session.scalar(select(WebSession.id)) is None


def test_a_failed_housekeeping_is_logged_and_the_scheduler_goes_on(
    tmp_path: Path, policy: Policy, clock: Any
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'no such directory' / 'disputes.db'}")
    broken = make_session_factory(engine)
    scheduler = EscalationScheduler(broken, policy, clock, Metrics(broken, clock), interval=60)
    try:
        with capture_logs() as events:
            scheduler.run_housekeeping()
    finally:
        engine.dispose()
    assert [(e["event"], e["log_level"]) for e in events] == [("housekeeping.failed", "error")]
