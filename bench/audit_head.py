"""What the global audit head costs: 200 acknowledges one after another, then 200 from 16 threads, through
`transactions.apply_trigger` on a fresh PostgreSQL database (every writer locks the one head row).

    .venv/bin/python bench/audit_head.py [--url postgresql://postgres@127.0.0.1:5432/test]

Run it on two commits to compare; it prints one line.
"""

from __future__ import annotations

import argparse
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dispute_service import transactions
from dispute_service.access import Actor
from dispute_service.database import make_engine, make_session_factory, normalise_url, upgrade
from dispute_service.inputs import ActionInput, RaiseInput
from dispute_service.models import Person
from states.policy import load_default_policy

IRO = Actor("iro@example.gov.uk", frozenset({"iro"}))
TM = Actor("tm@example.gov.uk", frozenset({"team_manager"}))
DISPUTES = 400


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    base = normalise_url(parser.parse_args().url)
    name = f"bench_head_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        engine = make_engine(url, pool_size=20, max_overflow=10)
        sessions = make_session_factory(engine)
        policy = load_default_policy()
        now = datetime(2024, 3, 4, 10, tzinfo=UTC)
        with sessions.begin() as session:
            for actor in (IRO, TM):
                session.add(
                    Person(
                        name=actor.email,
                        email=actor.email,
                        roles=sorted(actor.roles),
                        active=True,
                        created_at=now,
                        updated_at=now,
                    )
                )
        data = RaiseInput(
            child_ref="LCS-1",
            case_type="looked_after",
            categories=["contact"],
            summary="bench",
            team_manager_email=TM.email,
        )
        ids = [
            transactions.raise_dispute(sessions, policy, IRO, data, now).dispute.id for _ in range(DISPUTES)
        ]
        later = now + timedelta(hours=1)

        def acknowledge(dispute_id: uuid.UUID) -> None:
            transactions.apply_trigger(sessions, policy, dispute_id, "acknowledge", TM, ActionInput(), later)

        began = time.perf_counter()
        for dispute_id in ids[:200]:
            acknowledge(dispute_id)
        sequential = time.perf_counter() - began
        began = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(acknowledge, ids[200:]))
        concurrent = time.perf_counter() - began
        print(
            f"sequential: {sequential / 200 * 1000:.1f} ms per acknowledge; "
            f"16 threads: {200 / concurrent:.0f} acknowledges per second"
        )
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
