"""How fast is the annual report on a national history? 1,000,000 disputes over 20 years, then time it.

As if every council in England had used the service for 20 years: about 50,000 disputes a year, each with
its audit entries (raise, timeouts, responses on time and late, manual escalations, resolutions, a few
reopens, withdrawals, CAFCASS referrals and later corrections), the last few still open. The rows are
bulk-inserted (SQLAlchemy Core executemany on SQLite, COPY on PostgreSQL), the database is analysed as a
production one would be, and then the service's own `annual_report` is timed: the first (cold) run and
the median of the next runs, for the last complete year and for a year in the middle of the history.

    .venv/bin/python bench/report.py                           # 1,000,000 on SQLite, then PostgreSQL
    .venv/bin/python bench/report.py --count 100000 --only sqlite

The audit entries are keyed and chained as real ones are (each dispute's chain and the global one, under
the settings' audit key), but their text hashes are made up and the free-text table is left empty: the
report never reads it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.engine import make_url

from dispute_service import audit
from dispute_service.config import Settings
from dispute_service.database import make_engine, make_session_factory, normalise_url, upgrade
from dispute_service.models import AuditEntry, AuditHead, Dispute, PolicyVersion
from dispute_service.report.formats import to_csv, to_svg
from dispute_service.transactions import annual_report
from states.policy import load_default_policy
from states.vocabulary import CATEGORIES

POLICY = load_default_policy()
STAGES = POLICY.stage_ids
OWNER_ROLES = {s.id: s.owner_role for s in POLICY.stages}
FIRST_YEAR = 2005
SNAPSHOT = datetime(2025, 4, 10, tzinfo=UTC)  # "now": disputes still running then stay open
CHUNK = 20_000
DAY = timedelta(days=1)
# Where disputes end up: most at Team Manager, a tail up the ladder (cumulative weights).
TARGETS = [(0.30, 0), (0.70, 1), (0.88, 2), (0.96, 3), (0.99, 4), (1.0, 5)]
DISPUTE_COLUMNS = [c.name for c in Dispute.__table__.columns]
AUDIT_COLUMNS = [c.name for c in AuditEntry.__table__.columns if c.name != "id"]


@dataclass
class Walk:
    """One dispute's life, event by event, as the use cases would have recorded it."""

    rng: random.Random
    dispute_id: uuid.UUID
    stage: int = 0
    state: str = "awaiting_response"
    seq: int = 0
    head: str = "0" * 64
    entries: list[dict[str, Any]] = field(default_factory=list)
    row: dict[str, Any] = field(default_factory=dict)

    def event(
        self, at: datetime, trigger: str, to_stage: int, to_state: str, details: dict[str, Any], actor: str
    ) -> None:
        self.seq += 1
        # Stands in for a text's hash; the entry's own hash is made by `sign`, in the global order.
        digest = hashlib.sha256(f"{self.dispute_id}{self.seq}{trigger}".encode()).hexdigest()
        has_text = trigger in ("raise", "respond", "escalate", "resolve", "withdraw", "reopen", "amend")
        due = at + timedelta(days=7) if to_stage != self.stage or trigger == "raise" else None
        self.entries.append(
            {
                "dispute_id": self.dispute_id,
                "seq": self.seq,
                "at": at,
                "actor": actor,
                "actor_role": None if actor == "system" else "iro",
                "channel": "scheduler" if actor == "system" else "api",
                "trigger": trigger,
                "from_stage": None if trigger == "raise" else STAGES[self.stage],
                "to_stage": STAGES[to_stage],
                "from_state": None if trigger == "raise" else self.state,
                "to_state": to_state,
                "due_at_before": None,
                "due_at_after": due,
                "escalate_at_before": None,
                "escalate_at_after": due,
                "text_id": None,
                "text_sha256": digest[::-1] if has_text else None,
                "details": json.dumps(details, sort_keys=True, separators=(",", ":")),
            }
        )
        self.stage, self.state = to_stage, to_state

    def sign(self, head: list[Any], key: str) -> None:
        """Chain the entries to the dispute's head and the global `head` ([gseq, hash]), as audit.append."""
        for entry in self.entries:
            entry.update(prev_hash=self.head, key_id=audit.key_id(key), gseq=head[0] + 1, gprev_hash=head[1])
            entry["hash"] = self.head = audit.row_hash(entry, key)
            head[:] = [entry["gseq"], entry["hash"]]


def walk(rng: random.Random, number: int, year: int, policy_id: int) -> Walk | None:
    """A dispute raised in the reporting year `year`, with every event up to the snapshot."""
    raised_at = datetime(year, 4, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(365 * 86400))
    if raised_at >= SNAPSHOT:
        return None
    w = Walk(rng, uuid.UUID(int=rng.getrandbits(128), version=4))
    case_type = rng.choices(["looked_after", "child_protection", "care_leaver"], [80, 15, 5])[0]
    categories = rng.sample(CATEGORIES, rng.choice((1, 1, 1, 2)))
    t = raised_at
    ended_at: datetime | None = None
    resolved_stage: str | None = None
    roll = rng.random()
    target = next(stage for weight, stage in TARGETS if roll <= weight)
    if case_type != "looked_after":
        target = min(target, 4)

    def happen(after: timedelta, *event: Any) -> bool:
        nonlocal t
        t += after
        if t >= SNAPSHOT:
            return False
        w.event(t, *event)
        return True

    def days(low: float, high: float) -> timedelta:
        return timedelta(days=rng.uniform(low, high))

    w.event(t, "raise", 0, "awaiting_response", {"start_stage": STAGES[0]}, "iro")
    moving = True
    while moving and w.stage < target:
        nxt = w.stage + 1
        arrive = "awaiting_iro_decision" if nxt == len(STAGES) - 1 else "awaiting_response"
        if rng.random() < 0.35:
            moving = happen(days(6.8, 7.2), "timeout", nxt, arrive, {"kind": "automatic"}, "system")
        else:
            late = rng.random() < 0.15
            moving = happen(
                days(7.1, 7.4) if late else days(0.2, 4.5),
                "respond",
                w.stage,
                "responded",
                {"late": late},
                "tm",
            ) and happen(days(0.1, 2), "escalate", nxt, arrive, {"kind": "manual"}, "iro")
    if moving:
        end = rng.random()
        if w.stage == len(STAGES) - 1 and case_type == "looked_after" and end < 0.5:
            if happen(days(1, 10), "refer_to_cafcass", w.stage, "referred", {"alongside": False}, "iro"):
                if happen(days(20, 60), "close", w.stage, "closed", {"outcome_code": None}, "iro"):
                    ended_at = t
        elif end < 0.08:
            if happen(days(1, 10), "withdraw", w.stage, "withdrawn", {}, "iro"):
                ended_at = t
        else:
            rounds = 2 if end > 0.97 and w.stage < len(STAGES) - 2 else 1
            for i in range(rounds):
                if w.state != "responded" and w.stage < len(STAGES) - 1:
                    late = rng.random() < 0.15
                    if not happen(days(0.2, 4.5), "respond", w.stage, "responded", {"late": late}, "tm"):
                        break
                details = {"outcome_code": "action_agreed", "resolved_stage": STAGES[w.stage]}
                if not happen(days(0.1, 3), "resolve", w.stage, "resolved", details, "iro"):
                    break
                ended_at, resolved_stage = t, STAGES[w.stage]
                if i + 1 < rounds:
                    reopened = {"resolved_stage": STAGES[w.stage], "to_stage": STAGES[w.stage + 1]}
                    if not happen(days(1, 5), "reopen", w.stage + 1, "awaiting_response", reopened, "iro"):
                        break
                    ended_at = resolved_stage = None
    if rng.random() < 0.005:
        # A correction, sometimes long after the year's end.
        fixed = "care_leaver" if case_type != "care_leaver" else "looked_after"
        details = {"before": {"case_type": case_type}, "after": {"case_type": fixed}}
        if happen(days(1, 400), "amend", w.stage, w.state, details, "iro"):
            case_type = fixed
    last = w.entries[-1]
    w.row = {
        "id": w.dispute_id,
        "reference": f"DR-{year}-{number:06d}",
        "child_ref": f"LCS-{rng.randrange(10**8):08d}",
        "sibling_refs": [],
        "case_type": case_type,
        "categories": categories,
        "rating": None,
        "iro_email": f"iro{rng.randrange(3000)}@council.gov.uk",
        "team_manager_email": f"tm{rng.randrange(6000)}@council.gov.uk",
        "stage": STAGES[w.stage],
        "state": w.state,
        "owner_email": None,
        "owner_role": OWNER_ROLES[STAGES[w.stage]],
        "stage_entry_seq": w.stage + 1,
        "stage_entered_at": last["at"],
        "due_at": last["due_at_after"] if ended_at is None else None,
        "escalate_at": None,
        "next_reminder_at": None,
        "acknowledged_at": None,
        "responded_at": None,
        "held_at": None,
        "hold_review_on": None,
        "hold_remaining_working_days": None,
        "hold_remaining_seconds": None,
        "resolved_at": ended_at if resolved_stage else None,
        "resolved_stage": resolved_stage,
        "resolved_by": "iro@council.gov.uk" if resolved_stage else None,
        "reopen_until": None,
        "outcome_code": "action_agreed" if resolved_stage else None,
        "outcome_text_id": None,
        "referred_on": None,
        "cafcass_reference": None,
        "ended_at": ended_at,
        "policy_id": policy_id,
        "raised_at": raised_at,
        "updated_at": last["at"],
        "version": w.seq,
        "audit_seq": w.seq,
        "audit_hash": w.head,
        # All on the council's own ladder: the report's by-ladder and by-organisation queries still read
        # every row of the year.
        "ladder": "own",
        "organisation_id": None,
        "their_reference": None,
        "contacts": {},
        "awaiting_contact_for": None,
    }
    return w


def history(
    count: int, years: int, policy_id: int, head: list[Any]
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Chunks of (dispute rows, audit rows), year by year, the same every run. `head` is the global chain's
    [gseq, hash], advanced as the entries are signed; the loaders store it in `audit_head` at the end."""
    key = Settings().audit_key
    rng = random.Random(20180331)
    per_year = count // years
    disputes: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for year in range(SNAPSHOT.year - years, SNAPSHOT.year):
        for number in range(1, per_year + 1):
            w = walk(rng, number, year, policy_id)
            if w is None:
                continue
            w.sign(head, key)
            w.row["audit_hash"] = w.head
            disputes.append(w.row)
            entries.extend(w.entries)
            if len(disputes) >= CHUNK:
                yield disputes, entries
                disputes, entries = [], []
    if disputes:
        yield disputes, entries


class Loader:
    """Bulk-loads one database. Secondary indexes are dropped for the load and built again after it, as a
    bulk load is done; the constraints (primary keys, unique dispute and sequence) stay throughout."""

    def __init__(self, label: str, url: str) -> None:
        self.label, self.url = label, url
        upgrade(url)
        self.engine = make_engine(url, pool_size=2, max_overflow=0)
        with self.engine.begin() as conn:
            conn.execute(
                insert(PolicyVersion.__table__).values(
                    sha256=POLICY.sha256, text=POLICY.text, first_used_at=SNAPSHOT
                )
            )
            self.policy_id = conn.execute(select(PolicyVersion.id)).scalar_one()
            self.indexes = [(name, sql) for name, sql in conn.execute(text(self._INDEXES[label]))]
            for name, _ in self.indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
        self.raw = self.engine.raw_connection()
        self.seconds = 0.0
        self.disputes = self.entries = 0
        self.figures: dict[str, Any] = {}  # for --json, from `finish` and `time_reports`

    _INDEXES = {
        "sqlite": "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('disputes', 'audit_entries')",
        "postgres": "SELECT indexname, indexdef FROM pg_indexes "
        "WHERE tablename IN ('disputes', 'audit_entries') "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
    }

    def load(self, disputes: list[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
        started = time.perf_counter()
        if self.label == "sqlite":
            with self.engine.begin() as conn:
                conn.execute(insert(Dispute.__table__), disputes)
                conn.execute(insert(AuditEntry.__table__), entries)
        else:
            conn: Any = self.raw.driver_connection
            with conn.cursor() as cur:
                with cur.copy(f"COPY disputes ({', '.join(DISPUTE_COLUMNS)}) FROM STDIN") as copy:
                    for row in disputes:
                        copy.write_row([_copy_value(row[c]) for c in DISPUTE_COLUMNS])
                audit_columns = ", ".join(f'"{c}"' for c in AUDIT_COLUMNS)
                with cur.copy(f"COPY audit_entries ({audit_columns}) FROM STDIN") as copy:
                    for row in entries:
                        copy.write_row([row[c] for c in AUDIT_COLUMNS])
            conn.commit()
        self.seconds += time.perf_counter() - started
        self.disputes += len(disputes)
        self.entries += len(entries)

    def finish(self, head: list[Any]) -> None:
        started = time.perf_counter()
        self.raw.close()
        with self.engine.begin() as conn:
            conn.execute(update(AuditHead).values(gseq=head[0], hash=head[1]))
            for _, sql in self.indexes:
                conn.execute(text(sql))
            if self.label == "sqlite":
                conn.exec_driver_sql("ANALYZE")
        if self.label == "postgres":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                # What autovacuum does on a live database: statistics, and the visibility map that
                # index-only scans rely on.
                conn.exec_driver_sql("VACUUM ANALYZE disputes")
                conn.exec_driver_sql("VACUUM ANALYZE audit_entries")
        self.seconds += time.perf_counter() - started
        with self.engine.connect() as conn:
            size = conn.execute(text(self._SIZE[self.label])).scalar()
            open_now = conn.execute(select(func.count()).where(Dispute.ended_at.is_(None))).scalar()
        self.figures.update(
            database=self.label,
            disputes=self.disputes,
            entries=self.entries,
            load_s=self.seconds,
            bytes=int(size or 0),
            years=[],
        )
        print(
            f"[{self.label}] loaded {self.disputes:,} disputes and {self.entries:,} audit entries in "
            f"{self.seconds:.0f} s (indexes rebuilt after); database {int(size or 0) / 1e9:.2f} GB; "
            f"{open_now:,} disputes open at the snapshot"
        )

    _SIZE = {
        "sqlite": "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        "postgres": "SELECT pg_database_size(current_database())",
    }


def _copy_value(value: Any) -> Any:
    # COPY takes JSON columns as their text; SQLAlchemy serialises them itself on SQLite.
    return json.dumps(value) if isinstance(value, list | dict) else value


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def time_reports(loader: Loader, years: int, runs: int) -> None:
    sessions = make_session_factory(loader.engine)
    label = loader.label
    for year in (SNAPSHOT.year - 1, SNAPSHOT.year - years // 2):

        def run(year: int = year) -> Any:
            return annual_report(sessions, POLICY, year)

        cold, report = timed(run)
        warm = [timed(run)[0] for _ in range(runs)]
        data = report.to_dict()
        escalations = data["escalations"]["automatic"] + data["escalations"]["manual"]
        loader.figures["years"].append(
            {
                "label": data["period"]["label"],
                "first_s": cold,
                "median_s": statistics.median(warm),
                "max_s": max(warm),
                "raised": data["raised"]["this_year"],
            }
        )
        print(
            f"[{label}] {data['period']['label']}: first run {cold:.3f} s, "
            f"median of {runs} {statistics.median(warm):.3f} s (max {max(warm):.3f} s); "
            f"raised {data['raised']['this_year']:,}, escalations {escalations:,}, "
            f"open at the year's end {data['open_at_year_end']:,}"
        )
    csv_s, _ = timed(lambda: to_csv(report))
    svg_s, _ = timed(lambda: to_svg(report))
    print(f"[{label}] rendering: CSV {csv_s * 1000:.1f} ms, SVG {svg_s * 1000:.0f} ms")
    loader.figures.update(csv_s=csv_s, svg_s=svg_s)
    loader.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000, help="disputes in all (default 1,000,000)")
    parser.add_argument("--years", type=int, default=20, help="years of history (default 20)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs after the first (default 5)")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DISPUTES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--json", type=Path, help="also write the figures here, for bench/all.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as cleanup:
        loaders = []
        if args.only in (None, "sqlite"):
            loaders.append(Loader("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}"))
        if args.only in (None, "postgres"):
            loaders.append(Loader("postgres", cleanup.enter_context(scratch_database(args.postgres))))
        started = time.perf_counter()
        head: list[Any] = [0, audit.GENESIS_HASH]
        for disputes, entries in history(args.count, args.years, loaders[0].policy_id, head):
            for loader in loaders:
                loader.load(disputes, entries)
        generating = time.perf_counter() - started - sum(loader.seconds for loader in loaders)
        print(f"generated the history in {generating:.0f} s")
        for loader in loaders:
            loader.finish(head)
        for loader in loaders:
            time_reports(loader, args.years, args.runs)
        if args.json:
            figures = {"count": args.count, "years": args.years, "generate_s": generating}
            results = [loader.figures for loader in loaders]
            args.json.write_text(json.dumps({"bench": "report", **figures, "results": results}, indent=1))


@contextlib.contextmanager
def scratch_database(server: str) -> Iterator[str]:
    base = normalise_url(server)
    name = f"bench_report_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
