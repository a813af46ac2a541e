"""The engines: a database error's message never carries the values of the statement that failed; on
SQLite, writers queue in the process rather than in SQLite's busy handler, and readers take no write lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.database import make_engine, make_session_factory, reading, upgrade
from dispute_service.models import ReferenceCounter


def test_a_database_error_never_carries_free_text_into_a_traceback(engine: Any) -> None:
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError) as raised, engine.begin() as conn:
        statement = text("INSERT INTO no_such_table (body) VALUES (:body)")
        conn.execute(statement, {"body": "SECRET-SUMMARY Jamie"})
    assert "SECRET" not in str(raised.value) and "Jamie" not in str(raised.value)


@pytest.fixture
def impatient_sqlite(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite engine whose connections do not wait at all in SQLite's busy handler: any writer that met
    another's lock inside SQLite would fail at once with "database is locked"."""
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    upgrade(url)
    engine = make_engine(url, pool_size=20, max_overflow=0)

    @event.listens_for(engine, "connect")
    def _no_busy_wait(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")

    yield engine
    engine.dispose()


def _bump(sessions: sessionmaker[Session], barrier: threading.Barrier) -> None:
    barrier.wait()
    with sessions.begin() as session:
        counter = session.scalars(select(ReferenceCounter).where(ReferenceCounter.year == 2017)).one()
        counter.last += 1


def test_many_sqlite_writers_at_once_queue_in_the_process_and_none_meets_a_locked_database(
    impatient_sqlite: Engine,
) -> None:
    sessions = make_session_factory(impatient_sqlite)
    with sessions.begin() as session:
        session.add(ReferenceCounter(year=2017, last=0))
    writers = 16
    rounds = 10
    barrier = threading.Barrier(writers)
    with ThreadPoolExecutor(writers) as pool:
        for _ in range(rounds):
            # All of them at once, each a read-then-write under the write lock.
            for future in [pool.submit(_bump, sessions, barrier) for _ in range(writers)]:
                future.result()  # "database is locked" would surface here
    with sessions.begin() as session:
        assert session.scalar(select(ReferenceCounter.last)) == writers * rounds


def test_the_queue_is_released_when_a_writer_rolls_back(impatient_sqlite: Engine) -> None:
    sessions = make_session_factory(impatient_sqlite)
    with pytest.raises(RuntimeError), sessions.begin() as session:
        session.add(ReferenceCounter(year=2018, last=0))
        session.flush()
        raise RuntimeError("the use case refused")
    # From another thread, so a lock still held by the first would make this wait until the test times out.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: _bump_once(sessions, 2019)).result(timeout=10)
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(ReferenceCounter)) == 1


def _bump_once(sessions: sessionmaker[Session], year: int) -> None:
    with sessions.begin() as session:
        session.add(ReferenceCounter(year=year, last=1))


def test_a_read_neither_waits_for_a_writer_nor_blocks_one(impatient_sqlite: Engine) -> None:
    sessions = make_session_factory(impatient_sqlite)
    with sessions.begin() as session:
        session.add(ReferenceCounter(year=2017, last=5))
    writer_holds = threading.Event()
    reader_done = threading.Event()

    def write() -> None:
        with sessions.begin() as session:
            session.execute(text("UPDATE reference_counters SET last = 6"))
            writer_holds.set()
            # Held until the reader has read: a reader that needed the write lock would fail at once.
            assert reader_done.wait(timeout=10)

    with ThreadPoolExecutor(1) as pool:
        writing = pool.submit(write)
        assert writer_holds.wait(timeout=10)
        with reading(sessions) as session:
            # The snapshot from before the writer's commit.
            assert session.scalar(select(ReferenceCounter.last)) == 5
        reader_done.set()
        writing.result(timeout=10)
    with reading(sessions) as session:
        assert session.scalar(select(ReferenceCounter.last)) == 6
