"""How long does a page of the dispute list take, deep in a long list? 100,000 disputes, then time it.

Seeds a fresh database (a SQLite file, then a PostgreSQL database of its own if one answers) with N
disputes over two years, each with its summary, bulk-loaded as `bench/report.py` loads its history
(SQLAlchemy Core executemany on SQLite, COPY on PostgreSQL; then `ANALYZE`, or `VACUUM ANALYZE` as
autovacuum would). Then it times `GET /api/v1/disputes` through the real app (FastAPI's TestClient, a
real token, the request's own transaction): as an admin, who may read every dispute, the first page, the
page at offset 50,000 and the page after a cursor at the same depth; and as the IRO with the most
disputes, whose rights narrow the list to a few dozen. Each figure is the median of several tries after
one to warm up. With `--explain`, each request's statements are printed with their time and the
database's plan for them.

    .venv/bin/python bench/list.py                               # 100,000 on SQLite, then PostgreSQL
    .venv/bin/python bench/list.py --count 20000 --only sqlite --explain

Run it on two commits to compare, e.g. the code before cursors, with this script and venv:

    git archive e3c2fd9 | tar -x -C /tmp/before && PYTHONPATH=/tmp/before .venv/bin/python bench/list.py

Against code without cursors, the cursor row says so.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, insert, select

# Run as a script, this folder comes first on sys.path, where bench/api.py would hide the project's `api`
# package: the folder comes off the path until `api` is imported, then back (last) for bench/report.py.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
from api.app import Mode, create_app  # noqa: E402, I001
from api.auth import development_token  # noqa: E402
from dispute_service.config import Settings  # noqa: E402
from dispute_service.database import upgrade  # noqa: E402
from dispute_service.logs import configure_logging  # noqa: E402
from dispute_service.models import AuditText, Dispute, Person, PolicyVersion, StageEntry  # noqa: E402

sys.path.append(str(_BENCH))
from report import POLICY, _copy_value, scratch_database, walk  # noqa: E402, I001

SECRET = "bench-secret-0123456789abcdef0123456789"
ADMIN = "admin@council.gov.uk"
CHUNK = 20_000
URL = "/api/v1/disputes"


def disputes(count: int, policy_id: int) -> Iterator[list[dict[str, Any]]]:
    """Dispute rows in chunks, the same every run: `report.walk`'s, over the two years to April 2025."""
    rng = random.Random(20261201)
    rows: list[dict[str, Any]] = []
    number = 0
    while number < count:
        year = 2023 + number * 2 // count
        w = walk(rng, number + 1, year, policy_id)
        if w is None:
            continue
        number += 1
        rows.append(w.row)
        if len(rows) == CHUNK:
            yield rows
            rows = []
    if rows:
        yield rows


def seed(label: str, url: str, count: int) -> str:
    """Migrate, then load the disputes, their summaries and two people; return the busiest IRO."""
    upgrade(url)
    engine = create_engine(url)
    now = datetime(2025, 4, 10, tzinfo=UTC)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            insert(PolicyVersion.__table__).values(sha256=POLICY.sha256, text=POLICY.text, first_used_at=now)
        )
        policy_id = conn.execute(select(PolicyVersion.id)).scalar_one()
    iros: dict[str, int] = {}
    for rows in disputes(count, policy_id):
        for row in rows:
            iros[row["iro_email"]] = iros.get(row["iro_email"], 0) + 1
        entries = [
            {
                "dispute_id": row["id"],
                "seq": row["stage_entry_seq"],
                "stage": row["stage"],
                # At CAFCASS the stage is the IRO's own.
                "owner_email": row["iro_email"] if row["owner_role"] == "iro" else row["owner_email"],
                "owner_role": row["owner_role"],
                "entered_at": row["stage_entered_at"],
                "due_at": row["due_at"],
                "escalate_at": None,
                "acknowledged_at": None,
                "responded_at": None,
                "left_at": row["ended_at"],
            }
            for row in rows
        ]
        texts = [
            {
                "dispute_id": row["id"],
                "kind": "summary",
                "body": f"Summary of {row['reference']}",
                "sha256": "0" * 64,
                "created_at": row["raised_at"],
                "redacted_at": None,
            }
            for row in rows
        ]
        _load(label, engine, rows, entries, texts)
    iro = max(iros, key=lambda email: iros[email])
    with engine.begin() as conn:
        conn.execute(
            insert(Person.__table__),
            [
                {
                    "name": email,
                    "email": email,
                    "roles": roles,
                    "active": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for email, roles in ((ADMIN, ["admin"]), (iro, ["iro"]))
            ],
        )
    if label == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # What autovacuum does on a live database: statistics, and the visibility map that index-only
            # scans rely on.
            conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    seconds = time.perf_counter() - started
    print(f"[{label}] loaded {count:,} disputes in {seconds:.0f} s; the busiest IRO has {iros[iro]}")
    return iro


def _load(label: str, engine: Engine, *tables: list[dict[str, Any]]) -> None:
    """Disputes, their stage entries and their summaries, in that order."""
    if label == "sqlite":
        with engine.begin() as conn:
            for table, rows in zip((Dispute, StageEntry, AuditText), tables, strict=True):
                conn.execute(insert(table.__table__), rows)
        return
    raw = engine.raw_connection()
    try:
        conn: Any = raw.driver_connection
        with conn.cursor() as cur:
            for table, rows in zip(("disputes", "stage_entries", "audit_texts"), tables, strict=True):
                columns = list(rows[0])
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([_copy_value(row[c]) for c in columns])
        conn.commit()
    finally:
        raw.close()


class Statements:
    """The statements the app sends while `recording`, with their parameters."""

    def __init__(self) -> None:
        self.recording = False
        self.seen: list[tuple[str, Any]] = []
        event.listen(Engine, "before_cursor_execute", self._before)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.recording:
            self.seen.append((statement, parameters))

    @contextlib.contextmanager
    def record(self) -> Iterator[list[tuple[str, Any]]]:
        self.seen, self.recording = [], True
        try:
            yield self.seen
        finally:
            self.recording = False


def explain(label: str, url: str, statements: list[tuple[str, Any]]) -> None:
    """Each SELECT the request ran, with the median time of three runs of it on its own (every row
    fetched: SQLite finds rows as they are fetched) and the database's plan for it, in one transaction
    with whatever the request SET for its own."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement, parameters in statements:
            if statement.startswith("SET "):  # what the request set for its transaction (JIT off, say)
                conn.exec_driver_sql(statement, parameters)
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            tries = []
            for _ in range(3):
                started = time.perf_counter()
                conn.exec_driver_sql(statement, parameters).all()
                tries.append(time.perf_counter() - started)
            prefix = "EXPLAIN QUERY PLAN " if label == "sqlite" else "EXPLAIN "
            plan = conn.exec_driver_sql(prefix + statement, parameters).all()
            print(f"      {statistics.median(tries) * 1000:7.1f} ms  {' '.join(statement.split())[:150]}")
            for row in plan:
                print(f"                  {row[-1] if label == 'sqlite' else row[0]}")
    engine.dispose()


def time_pages(
    label: str, url: str, iro: str, depth: int, runs: int, statements: Statements, show: bool
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        jwt_secret=SECRET,
        link_secret=SECRET,
        audit_key=SECRET,
        smtp_host="localhost",
        public_base_url="http://localhost:8000",
        scheduler_enabled=False,
    )
    now = datetime.now(UTC)
    admin = {"Authorization": f"Bearer {development_token(settings, ADMIN, now)}"}
    reader = {"Authorization": f"Bearer {development_token(settings, iro, now)}"}
    with TestClient(create_app(settings, mode=Mode.STRICT)) as client:

        def get(headers: dict[str, str], **params: Any) -> Callable[[], dict[str, Any]]:
            def request() -> dict[str, Any]:
                response = client.get(URL, params=params, headers=headers)
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                return body

            return request

        # The cursor a client holds once it has read `depth` rows: the `next` of the page that ends there.
        deep = get(admin, offset=depth - 1, limit=1)().get("next")
        cases: list[tuple[str, Callable[[], dict[str, Any]] | None]] = [
            ("admin, offset=0", get(admin)),
            (f"admin, offset={depth}", get(admin, offset=depth)),
            (f"admin, after=<row {depth}>", get(admin, after=deep) if deep else None),
            ("IRO, offset=0", get(reader)),
        ]
        for name, request in cases:
            if request is None:
                print(f"[{label}] {name:28} (this code has no cursor)")
                continue
            first = request()
            tries = []
            for _ in range(runs):
                started = time.perf_counter()
                request()
                tries.append(time.perf_counter() - started)
            print(
                f"[{label}] {name:28} median {statistics.median(tries) * 1000:7.1f} ms "
                f"(min {min(tries) * 1000:.1f}, max {max(tries) * 1000:.1f}; "
                f"{len(first['items'])} items of {first['total']:,})"
            )
            if show:
                with statements.record() as seen:
                    request()
                explain(label, url, seen)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="disputes (default 100,000)")
    parser.add_argument("--depth", type=int, default=50_000, help="the deep page's offset (default 50,000)")
    parser.add_argument("--runs", type=int, default=7, help="timed tries of each request (default 7)")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--explain", action="store_true", help="print each statement's time and plan")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("DISPUTES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL server to make a scratch database on (default: DISPUTES_TEST_POSTGRES_URL)",
    )
    args = parser.parse_args()
    configure_logging("json", logging.WARNING)
    statements = Statements()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as cleanup:
        targets = []
        if args.only in (None, "sqlite"):
            targets.append(("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}"))
        if args.only in (None, "postgres"):
            try:
                targets.append(("postgres", cleanup.enter_context(scratch_database(args.pg_url))))
            except Exception as exc:  # no server: the SQLite figures stand alone
                if args.only == "postgres":
                    raise
                print(f"[postgres] skipped: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        for label, url in targets:
            iro = seed(label, url, args.count)
            depth = min(args.depth, args.count // 2)
            time_pages(label, url, iro, depth, args.runs, statements, args.explain)


if __name__ == "__main__":
    main()
