"""How late are automatic escalations? 10,000 deadlines across 60 seconds, with the default scheduler.

Runs the service's own scheduler (APScheduler in an asyncio loop, the sweep and its wake-up at the next
deadline) against a real database, and prints p50, p99 and max lateness (the escalation's commit time
minus `escalate_at`), the missed and duplicated escalations counted from the audit log, and how long a
catch-up of 10,000 deadlines already passed at start-up takes.

    .venv/bin/python bench/timers.py                        # SQLite, then PostgreSQL if reachable
    .venv/bin/python bench/timers.py --count 2000 --window 20 --only sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.access import Actor
from dispute_service.clock import utc_now
from dispute_service.config import Settings
from dispute_service.database import make_engine, make_session_factory, normalise_url, upgrade
from dispute_service.inputs import RaiseInput
from dispute_service.logs import configure_logging
from dispute_service.metrics import Metrics
from dispute_service.models import AuditEntry, Dispute, Person
from dispute_service.sweep import Fired, SweepReport
from states.policy import load_default_policy, parse_policy

POLICY = parse_policy(
    load_default_policy()
    .text.replace('respond_within = "5wd"', 'respond_within = "PT1H"')
    .replace('reminders = ["-2wd", "0wd"]', "reminders = []")
)
IRO = Actor("iro@example.gov.uk", frozenset({"iro"}))


def seed(sessions: sessionmaker[Session], count: int) -> list[uuid.UUID]:
    now = utc_now()
    with sessions.begin() as session:
        for name, email, roles in [("I", IRO.email, ["iro"]), ("T", "tm@example.gov.uk", ["team_manager"])]:
            session.add(
                Person(name=name, email=email, roles=roles, active=True, created_at=now, updated_at=now)
            )
    data = RaiseInput(
        child_ref="LCS-1",
        case_type="looked_after",
        categories=["contact"],
        summary="bench",
        team_manager_email="tm@example.gov.uk",
    )
    return [transactions.raise_dispute(sessions, POLICY, IRO, data, now).dispute.id for _ in range(count)]


def set_deadlines(
    sessions: sessionmaker[Session], ids: list[uuid.UUID], first: datetime, window: timedelta
) -> None:
    """Spread the open stages' escalation moments evenly over the window (bench set-up only)."""
    with sessions.begin() as session:
        for i, dispute_id in enumerate(ids):
            at = first + window * i / max(1, len(ids) - 1)
            session.execute(update(Dispute).where(Dispute.id == dispute_id).values(escalate_at=at))


def run_scheduler(
    sessions: sessionmaker[Session], until_done: int, limit_seconds: float
) -> tuple[list[Fired], float]:
    fired: list[Fired] = []

    def collect(report: SweepReport) -> None:
        fired.extend(report.fired)

    async def main() -> float:
        from api.scheduler import EscalationScheduler

        interval = Settings(_env_file=None).scheduler_interval_seconds  # type: ignore[call-arg]
        scheduler = EscalationScheduler(
            sessions, POLICY, utc_now, Metrics(sessions, utc_now), interval, collect
        )
        started = time.monotonic()
        scheduler.start()
        while len(fired) < until_done and time.monotonic() - started < limit_seconds:
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        scheduler.shutdown()
        return elapsed

    return fired, asyncio.run(main())


def audit_counts(sessions: sessionmaker[Session], ids: list[uuid.UUID], from_stage: str) -> tuple[int, int]:
    with sessions() as session:
        rows = session.execute(
            select(AuditEntry.dispute_id, func.count())
            .where(AuditEntry.trigger == "timeout", AuditEntry.from_stage == from_stage)
            .group_by(AuditEntry.dispute_id)
        ).all()
    counts = dict(rows)
    missed = sum(1 for i in ids if counts.get(i, 0) == 0)
    duplicated = sum(c - 1 for c in counts.values() if c > 1)
    return missed, duplicated


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def bench(label: str, url: str, count: int, window_s: float) -> dict[str, Any]:
    """Prints the figures, and returns them for --json."""
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    t = time.monotonic()
    ids = seed(sessions, count)
    seeded = time.monotonic() - t
    print(f"[{label}] seeded {count} disputes through the raise use case in {seeded:.1f} s")

    window = timedelta(seconds=window_s)
    set_deadlines(sessions, ids, utc_now() + timedelta(seconds=3), window)
    fired, elapsed = run_scheduler(sessions, count, window_s + 120)
    late = [(f.committed_at - f.scheduled_at).total_seconds() for f in fired if f.trigger == "timeout"]
    missed, duplicated = audit_counts(sessions, ids, "quality_assurance")
    figures: dict[str, Any] = {
        "database": label,
        "count": count,
        "window_s": window_s,
        "seed_s": seeded,
        "p50_s": statistics.median(late),
        "p99_s": percentile(late, 99),
        "max_s": max(late),
        "missed": missed,
        "duplicated": duplicated,
    }
    print(
        f"[{label}] {count} deadlines over {window_s:.0f} s: p50 {statistics.median(late):.3f} s, "
        f"p99 {percentile(late, 99):.3f} s, max {max(late):.3f} s late; "
        f"missed {missed}, duplicated {duplicated}"
    )

    set_deadlines(sessions, ids, utc_now() - timedelta(hours=1), timedelta(0))
    fired, elapsed = run_scheduler(sessions, count, 600)
    missed, duplicated = audit_counts(sessions, ids, "team_manager")
    print(
        f"[{label}] catch-up: {count} deadlines already passed at start-up all escalated in {elapsed:.1f} s "
        f"({count / elapsed:.0f}/s); missed {missed}, duplicated {duplicated}"
    )
    engine.dispose()
    figures.update(catch_up_s=elapsed, catch_up_missed=missed, catch_up_duplicated=duplicated)
    return figures


def main() -> None:
    # One JSON line per escalation would dominate a terminal; the bench keeps warnings and errors only.
    configure_logging("json", level=logging.WARNING)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DISPUTES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--json", type=Path, help="also write the figures here, for bench/all.py")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(bench("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.count, args.window))
    if args.only in (None, "postgres"):
        base = normalise_url(args.postgres)
        name = f"bench_timers_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            results.append(
                bench(
                    "postgres",
                    make_url(base).set(database=name).render_as_string(hide_password=False),
                    args.count,
                    args.window,
                )
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    if args.json:
        args.json.write_text(json.dumps({"bench": "timers", "results": results}, indent=1))


if __name__ == "__main__":
    # This folder comes first on sys.path when a bench runs as a script, and bench/api.py would hide the
    # project's `api` package: take it off before `run_scheduler` imports the scheduler.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    main()
