"""How fast is the API, against a bare app doing the same SQL? Issue 11's figures, each beside its target.

For SQLite and for PostgreSQL, this starts two servers under uvicorn with one worker each:

- ours: `dispute-service serve --no-migrate` in strict mode, with safe settings (random 48-byte secrets,
  a loopback public URL, mail to a sink SMTP server on loopback, aiosmtpd's `Sink`) and the scheduler on,
  as a real deployment runs it;
- bare: a FastAPI app defined below with SQLAlchemy Core, one transaction per request, in its own
  database (SQLite file, or PostgreSQL database) and its own three tables (people, disputes, audit). For
  acknowledge and escalate it looks up the caller, locks the row (`FOR UPDATE`; on SQLite `BEGIN
  IMMEDIATE` with writers queued on one lock in the process, as ours does), updates it and inserts an
  audit row; for GET it looks up the caller and reads the row; for raise it looks up the caller and
  inserts the row and an audit row. It checks the token (cached, as ours does) and the version an
  escalate is aimed at, and nothing else: no policy, no audit chain, no deadlines, no outbox.

Then `wrk` (Debian's: `apt-get install -y wrk`) drives raise, GET, acknowledge and escalate at 16
connections, after a warm-up, alternating ours and bare over at least three rounds, and the script prints
req/s, p50 and p99 for each, and the ratio ours/bare. Every request is a real, successful action: the
disputes acted on are raised beforehand through the service's own use case (untimed) or by the raise
rounds, each wrk thread walks its own list of them, and an escalate names the version it is aimed at.
Anything but a 2xx is counted and makes the figure invalid. Before each timed run the script waits until
ours has sent the emails earlier runs queued and both servers are idle, so one app's deferred work never
lands in the other's run.

Also: ours' idle RSS (after start-up and a first request), its RSS after 100,000 disputes and the annual
report in json, csv and svg, its start-up time to the first 200 from /readyz (`serve --no-migrate` on a
migrated database, and a migrating `serve` on an empty one), and the statements and transactions per
request, counted by SQLAlchemy events on the app's engine in-process (FastAPI's TestClient, the scheduler
off so that only the request's own statements are counted).

Client, servers and PostgreSQL share this machine's cores; the table says how much CPU wrk and anything
else on the machine took during the timed runs.

    .venv/bin/python bench/api.py              # about 10 minutes: 3 rounds of 5 s, 100,000 disputes
    .venv/bin/python bench/api.py --quick      # about 3 minutes, for developing: 3 rounds of 1 s, 10,000
    .venv/bin/python bench/api.py --full       # 5 rounds of 10 s
    .venv/bin/python bench/api.py --only sqlite --parts load --kinds get acknowledge --json out.json

PostgreSQL is `DISPUTES_TEST_POSTGRES_URL` or postgresql://postgres@127.0.0.1:5432/test; the script
creates its own databases there and drops them at the end. Unreachable, it is skipped with a loud line.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import logging
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import jwt
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url

BENCH = Path(__file__).resolve().parent


KINDS = ("raise", "get", "acknowledge", "escalate")
APPS = ("ours", "bare")
STAGES = (
    "quality_assurance",
    "team_manager",
    "head_of_corporate_parenting",
    "head_of_service",
    "assistant_director",
    "cafcass",
)
STAFF = [
    ("Ima Reviewer", "iro@example.gov.uk", ["iro"]),
    ("Tara Manager", "tm@example.gov.uk", ["team_manager"]),
    ("Colin Parenting", "hocp@example.gov.uk", ["head_of_corporate_parenting"]),
    ("Hana Service", "hos@example.gov.uk", ["head_of_service"]),
    ("Ada Director", "ad@example.gov.uk", ["assistant_director"]),
    ("Mira Manager", "iro.manager@example.gov.uk", ["iro_manager"]),
    ("Adam Admin", "admin@example.gov.uk", ["admin"]),
]
IRO_EMAIL, TM_EMAIL, MANAGER_EMAIL = "iro@example.gov.uk", "tm@example.gov.uk", "iro.manager@example.gov.uk"
# Who sends each kind of request: the IRO raises, reads and escalates; the named team manager owns the
# first stage and acknowledges.
CALLER = {"raise": IRO_EMAIL, "get": IRO_EMAIL, "acknowledge": TM_EMAIL, "escalate": IRO_EMAIL}
# The same body as bench/api.lua sends.
RAISE_FIELDS: dict[str, Any] = {
    "child_ref": "LCS-204816",
    "case_type": "looked_after",
    "categories": ["permanency_delay"],
    "summary": "Permanence plan not progressed since the last review.",
    "team_manager_email": TM_EMAIL,
}
ESCALATE_REASON = "Not satisfied: no date for the final hearing."

# Issue 11's targets. The bench reports against them; no test asserts them.
TARGET_RATIO = 0.6
TARGET_P99_MS = 50.0
TARGET_P99_KINDS = ("acknowledge", "get")
TARGET_IDLE_MIB = 90.0
TARGET_LOADED_MIB = 110.0
TARGET_READY_S = 1.0
TARGET_STATEMENTS = {"acknowledge": 8, "get": 2}

# Above this much CPU (in cores) taken by processes that are not part of the bench during a timed run,
# the run is marked as shared with other work on the machine.
NOISY_CORES = 0.25
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sizes:
    rounds: int
    duration: int  # wrk takes whole seconds
    warmup: int
    startup_runs: int
    rss_disputes: int
    seed_cap: int


PRESETS = {
    "quick": Sizes(rounds=3, duration=1, warmup=1, startup_runs=3, rss_disputes=10_000, seed_cap=300),
    "default": Sizes(rounds=3, duration=5, warmup=2, startup_runs=5, rss_disputes=100_000, seed_cap=2000),
    "full": Sizes(rounds=5, duration=10, warmup=3, startup_runs=7, rss_disputes=100_000, seed_cap=4000),
}
PARTS = ("statements", "startup", "load", "rss")


# ---------------------------------------------------------------------------------------------------------
# Results


@dataclass
class Row:
    """One line of the table: a figure, where it was measured, its value, its target and the verdict."""

    figure: str
    database: str
    value: str
    target: str = ""
    verdict: str = ""  # "met", "missed", "invalid" or ""


def verdict(met: bool) -> str:
    return "met" if met else "missed"


def print_table(rows: list[Row], notes: list[str], title: str) -> None:
    headers = ("figure", "database", "value", "target", "")
    cells = [headers] + [(r.figure, r.database, r.value, r.target, r.verdict.upper()) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    rule = "  ".join("-" * w for w in widths)
    print()
    print(title)
    print(rule)
    for i, line in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print(rule)
    print(rule)
    for note in notes:
        print(f"* {note}")


@dataclass
class Run:
    """One wrk run of one app and kind of request."""

    database: str
    app: str
    kind: str
    round: int  # 0 is the warm-up
    seconds: float
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    reused: int
    first_refusal: str
    server_cores: float
    wrk_cores: float
    postgres_cores: float
    other_cores: float

    @property
    def valid(self) -> bool:
        return self.non2xx == 0 and self.socket_errors == 0 and self.requests > 0


# ---------------------------------------------------------------------------------------------------------
# Settings, databases and processes


@dataclass(frozen=True)
class Secrets:
    jwt: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    link: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    audit: str = field(default_factory=lambda: secrets.token_urlsafe(48))


def strict_env(url: str, keys: Secrets, port: int, smtp_port: int) -> dict[str, str]:
    """The environment of a strict server: safe secrets, links and mail on loopback, the scheduler on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
    env.update(
        DISPUTES_DATABASE_URL=url,
        DISPUTES_JWT_SECRET=keys.jwt,
        DISPUTES_LINK_SECRET=keys.link,
        DISPUTES_AUDIT_KEY=keys.audit,
        DISPUTES_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        DISPUTES_SMTP_HOST="127.0.0.1",
        DISPUTES_SMTP_PORT=str(smtp_port),
        DISPUTES_LOG_FORMAT="json",
    )
    return env


def settings_for(url: str, keys: Secrets, **overrides: Any) -> Any:
    from dispute_service.config import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        jwt_secret=keys.jwt,
        link_secret=keys.link,
        audit_key=keys.audit,
        public_base_url="http://127.0.0.1:8000",
        smtp_host="127.0.0.1",
        log_format="json",
        **overrides,
    )


def token(keys: Secrets, email: str) -> str:
    from api.auth import development_token

    return development_token(settings_for("sqlite://", keys), email, datetime.now(UTC))


def normalise_url(url: str) -> str:
    # As dispute_service.database does (psycopg 3), without importing it into the bare app's process.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Databases:
    """Fresh databases for one engine: SQLite files in a temporary folder, or PostgreSQL databases on the
    server, each dropped at the end."""

    def __init__(self, label: str, folder: Path, postgres: str) -> None:
        self.label, self.folder, self.postgres = label, folder, normalise_url(postgres)
        self.created: list[str] = []

    def new(self, purpose: str) -> str:
        if self.label == "sqlite":
            path = self.folder / f"{purpose}-{uuid.uuid4().hex[:6]}.db"
            return f"sqlite:///{path}"
        name = f"bench_api_{purpose}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(self.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.created.append(name)
        return make_url(self.postgres).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = create_engine(self.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        self.created.clear()


def postgres_problem(url: str) -> str | None:
    try:
        engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure: the reason is printed and PostgreSQL skipped
        cause = getattr(exc, "orig", None) or exc
        return f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0][:120]}"
    return None


def proc_fields(pid: int) -> list[str]:
    # The command name may hold spaces; the fields after it are plain.
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    try:
        f = proc_fields(pid)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0.0
    return (int(f[11]) + int(f[12])) / TICKS


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of each PostgreSQL process on this machine, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                found[int(entry.name)] = cpu_seconds(int(entry.name))
        except OSError:
            continue
    return found


def postgres_seconds_since(before: dict[int, float]) -> float:
    # A process that ended meanwhile (an autovacuum worker, say) takes its time with it: count what each
    # process still here used since, and all of what a new one used.
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in postgres_cpu().items())


def machine_busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (the peak) of a process, in MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found


def call(port: int, method: str, path: str, bearer: str | None = None, body: Any = None) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """A server process on loopback, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.name, self.port, self.log = name, port, log
        self.started = time.perf_counter()
        with log.open("ab") as out:
            self.process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.pid = self.process.pid

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from the launch to the first 200 from /readyz."""
        while True:
            try:
                status, _ = call(self.port, "GET", "/readyz")
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            if time.perf_counter() - self.started > timeout:
                raise SystemExit(f"{self.name} was not ready after {timeout:.0f} s; see {self.log}")
            time.sleep(0.005)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve_ours(url: str, keys: Secrets, smtp_port: int, log: Path, *, migrate: bool = False) -> Server:
    port = free_port()
    argv = [str(Path(sys.executable).with_name("dispute-service")), "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port)] + ([] if migrate else ["--no-migrate"])
    return Server("ours", argv, strict_env(url, keys, port, smtp_port), port, log)


def serve_bare(url: str, keys: Secrets, log: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
    env["DISPUTES_JWT_SECRET"] = keys.jwt
    argv = [sys.executable, str(BENCH / "api.py"), "--serve-bare", url, str(port)]
    return Server("bare", argv, env, port, log)


@contextlib.contextmanager
def smtp_sink(log: Path) -> Iterator[tuple[int, int]]:
    """An SMTP server on loopback that accepts every email and keeps none: the outbox dispatcher sends to
    it as it would to the council's server. Yields (port, pid)."""
    port = free_port()
    argv = [str(Path(sys.executable).with_name("aiosmtpd")), "-n", "-l", f"127.0.0.1:{port}"]
    argv += ["-c", "aiosmtpd.handlers.Sink"]
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the SMTP sink did not start; see {log}") from None
                time.sleep(0.05)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


# ---------------------------------------------------------------------------------------------------------
# The bare app


BARE = MetaData()
bare_people = Table(
    "bare_people",
    BARE,
    Column("email", String(320), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
)
bare_disputes = Table(
    "bare_disputes",
    BARE,
    Column("id", Uuid, primary_key=True),
    Column("child_ref", String(64), nullable=False),
    Column("case_type", String(32), nullable=False),
    Column("categories", JSON, nullable=False),
    Column("summary", Text, nullable=False),
    Column("iro_email", String(320), nullable=False),
    Column("team_manager_email", String(320)),
    Column("stage", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
bare_audit = Table(
    "bare_audit",
    BARE,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dispute_id", Uuid, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("from_stage", String(64)),
    Column("to_stage", String(64), nullable=False),
    Column("from_state", String(32)),
    Column("to_state", String(32), nullable=False),
    Column("text", Text),
    Index("bare_audit_dispute", "dispute_id"),
)
BARE_WRITE = "bare_write"


def bare_engine(url: str) -> Engine:
    url = normalise_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_size=20, max_overflow=40, pool_timeout=60)
    engine = create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=20,
        max_overflow=40,
        pool_timeout=60,
    )

    # SQLAlchemy's recipe for SQLite transactions, with the pragmas ours uses: WAL, a busy timeout,
    # synchronous=NORMAL, and a writer's BEGIN IMMEDIATE so its read is made under the write lock.
    @event.listens_for(engine, "connect")
    def connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(BARE_WRITE) else "BEGIN")

    return engine


class BareRaise(BaseModel):
    child_ref: str
    case_type: str
    categories: list[str]
    summary: str
    team_manager_email: str | None = None


class BareAction(BaseModel):
    reason: str | None = None
    expected_version: int | None = None


def create_bare_app(url: str, jwt_secret: str) -> FastAPI:
    """The baseline: what each request must do at the least, in plain SQLAlchemy Core."""
    engine = bare_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    # SQLite has one writer at a time; waiting on a lock in the process wakes a writer as soon as the
    # last one commits, where SQLite's busy handler sleeps and polls.
    writers = threading.Lock()
    emails: dict[str, str] = {}
    app = FastAPI()
    app.state.engine = engine

    def caller_email(authorization: str | None) -> str:
        token = (authorization or "").removeprefix("Bearer ").strip()
        email = emails.get(token)
        if email is None:
            try:
                email = str(jwt.decode(token, jwt_secret, algorithms=["HS256"])["email"])
            except (jwt.PyJWTError, KeyError):
                raise HTTPException(401) from None
            emails[token] = email
        return email

    @contextlib.contextmanager
    def transaction(write: bool) -> Iterator[Connection]:
        queued = sqlite and write
        if queued:
            writers.acquire()
        try:
            with engine.connect().execution_options(**{BARE_WRITE: write}) as conn, conn.begin():
                yield conn
        finally:
            if queued:
                writers.release()

    def look_up(conn: Connection, email: str, role: str | None = None) -> None:
        person = conn.execute(
            select(bare_people.c.roles, bare_people.c.active).where(bare_people.c.email == email)
        ).first()
        if person is None or not person.active:
            raise HTTPException(401)
        if role is not None and role not in person.roles:
            raise HTTPException(403)

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.post("/api/v1/disputes", status_code=201)
    def raise_dispute(
        body: BareRaise, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        email = caller_email(authorization)
        now = datetime.now(UTC)
        row = {
            "id": uuid.uuid4(),
            "child_ref": body.child_ref,
            "case_type": body.case_type,
            "categories": body.categories,
            "summary": body.summary,
            "iro_email": email,
            "team_manager_email": body.team_manager_email,
            "stage": STAGES[0],
            "state": "awaiting_response",
            "version": 1,
            "acknowledged_at": None,
            "raised_at": now,
            "updated_at": now,
        }
        with transaction(write=True) as conn:
            look_up(conn, email, "iro")
            conn.execute(insert(bare_disputes).values(row))
            conn.execute(insert(bare_audit).values(audit_row(row, email, "raise", None, None, body.summary)))
        return row

    @app.get("/api/v1/disputes/{dispute_id}")
    def read_dispute(
        dispute_id: uuid.UUID, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        email = caller_email(authorization)
        with transaction(write=False) as conn:
            look_up(conn, email)
            row = (
                conn.execute(select(bare_disputes).where(bare_disputes.c.id == dispute_id)).mappings().first()
            )
        if row is None or email not in (row["iro_email"], row["team_manager_email"]):
            raise HTTPException(404)
        return dict(row)

    @app.post("/api/v1/disputes/{dispute_id}/actions/{trigger}")
    def act(
        dispute_id: uuid.UUID,
        trigger: str,
        body: BareAction,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        if trigger not in ("acknowledge", "escalate"):
            raise HTTPException(404)
        email = caller_email(authorization)
        now = datetime.now(UTC)
        with transaction(write=True) as conn:
            look_up(conn, email)
            found = (
                conn.execute(select(bare_disputes).where(bare_disputes.c.id == dispute_id).with_for_update())
                .mappings()
                .first()
            )
            if found is None:
                raise HTTPException(404)
            row = dict(found)
            before = (row["stage"], row["state"])
            if trigger == "acknowledge":
                if email != row["team_manager_email"]:
                    raise HTTPException(403)
                if row["state"] != "awaiting_response":
                    raise HTTPException(409)
                changes: dict[str, Any] = {"acknowledged_at": now}
            else:
                if email != row["iro_email"]:
                    raise HTTPException(403)
                if body.expected_version is None:
                    raise HTTPException(428)
                if body.expected_version != row["version"] or row["stage"] == STAGES[-1]:
                    raise HTTPException(409)
                changes = {"stage": STAGES[STAGES.index(row["stage"]) + 1], "acknowledged_at": None}
            changes.update(version=row["version"] + 1, updated_at=now)
            conn.execute(update(bare_disputes).where(bare_disputes.c.id == dispute_id).values(changes))
            row.update(changes)
            conn.execute(insert(bare_audit).values(audit_row(row, email, trigger, *before, body.reason)))
        return row

    return app


def audit_row(
    row: dict[str, Any], actor: str, trigger: str, stage: str | None, state: str | None, words: str | None
) -> dict[str, Any]:
    return {
        "dispute_id": row["id"],
        "at": row["updated_at"],
        "actor": actor,
        "trigger": trigger,
        "from_stage": stage,
        "to_stage": row["stage"],
        "from_state": state,
        "to_state": row["state"],
        "text": words,
    }


def serve_bare_here(url: str, port: int) -> None:
    import uvicorn

    app = create_bare_app(url, os.environ["DISPUTES_JWT_SECRET"])
    # As `dispute-service serve` runs ours: one worker, no access log, no Server header.
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, server_header=False)


# ---------------------------------------------------------------------------------------------------------
# Data: ours through its use cases, bare in bulk


class Ours:
    """The bench's own way into ours' database: migrate, add the staff, raise disputes, find targets."""

    def __init__(self, url: str, keys: Secrets) -> None:
        from dispute_service.database import make_engine, make_session_factory, upgrade

        self.url = url
        upgrade(url, audit_key=keys.audit)
        self.engine = make_engine(url, pool_size=8, max_overflow=0)
        self.sessions = make_session_factory(self.engine, audit_key=keys.audit)
        self.keys = keys
        self.postgres = self.engine.dialect.name == "postgresql"

    def add_staff(self) -> None:
        from dispute_service import people
        from dispute_service.access import Actor

        loader = Actor("bench", frozenset({"admin"}), "cli")
        with self.sessions.begin() as session:
            for name, email, roles in STAFF:
                data = people.PersonData(name=name, email=email, roles=roles)
                people.add_person(session, loader, data, datetime.now(UTC), audit_key=self.keys.audit)

    def raise_disputes(self, count: int) -> float:
        """Raise `count` disputes through the raise use case, as the IRO; returns the seconds it took."""
        from dispute_service import transactions
        from dispute_service.access import Actor
        from dispute_service.inputs import RaiseInput
        from states.policy import load_default_policy

        policy = load_default_policy()
        iro = Actor(IRO_EMAIL, frozenset({"iro"}))
        data = RaiseInput(**RAISE_FIELDS)
        started = time.perf_counter()

        def one(_: int) -> None:
            transactions.raise_dispute(self.sessions, policy, iro, data, datetime.now(UTC))

        # PostgreSQL takes several writers at once; SQLite has one writer at a time anyway.
        with ThreadPoolExecutor(6 if self.postgres else 1) as pool:
            list(pool.map(one, range(count)))
        return time.perf_counter() - started

    def targets(self, kind: str, limit: int) -> list[tuple[uuid.UUID, int, str]]:
        from dispute_service.models import Dispute

        query = select(Dispute.id, Dispute.version, Dispute.stage).where(Dispute.iro_email == IRO_EMAIL)
        if kind == "acknowledge":
            query = query.where(
                Dispute.state == "awaiting_response",
                Dispute.acknowledged_at.is_(None),
                Dispute.stage == STAGES[0],
            )
        elif kind == "escalate":
            query = query.where(Dispute.state == "awaiting_response", Dispute.stage != STAGES[-1])
        with self.engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(query.limit(limit))]

    def emails_pending(self) -> int:
        from dispute_service.models import Notification

        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count()).select_from(Notification).where(Notification.status == "pending")
            ).scalar()
        return int(count or 0)


class Bare:
    def __init__(self, url: str) -> None:
        self.engine = bare_engine(url)
        BARE.create_all(self.engine)
        with self.engine.begin() as conn:
            conn.execute(
                insert(bare_people),
                [{"email": e, "name": n, "roles": r, "active": True} for n, e, r in STAFF],
            )

    def raise_disputes(self, count: int) -> float:
        started = time.perf_counter()
        now = datetime.now(UTC)
        for start in range(0, count, 5000):
            rows = [
                {
                    **RAISE_FIELDS,
                    "id": uuid.uuid4(),
                    "iro_email": IRO_EMAIL,
                    "stage": STAGES[0],
                    "state": "awaiting_response",
                    "version": 1,
                    "acknowledged_at": None,
                    "raised_at": now,
                    "updated_at": now,
                }
                for _ in range(min(5000, count - start))
            ]
            with self.engine.begin() as conn:
                conn.execute(insert(bare_disputes), rows)
                conn.execute(
                    insert(bare_audit),
                    [audit_row(r, IRO_EMAIL, "raise", None, None, r["summary"]) for r in rows],
                )
        return time.perf_counter() - started

    def targets(self, kind: str, limit: int) -> list[tuple[uuid.UUID, int, str]]:
        d = bare_disputes.c
        query = select(d.id, d.version, d.stage)
        if kind == "acknowledge":
            query = query.where(
                d.state == "awaiting_response", d.acknowledged_at.is_(None), d.stage == STAGES[0]
            )
        elif kind == "escalate":
            query = query.where(d.state == "awaiting_response", d.stage != STAGES[-1])
        with self.engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(query.limit(limit))]


def write_targets(
    prefix: Path, kind: str, found: list[tuple[uuid.UUID, int, str]], threads: int, needed: int
) -> int:
    """Split the targets between wrk's threads, one file each, and say how many requests they hold.

    An escalate walks each dispute up the ladder in passes, aiming at the version the last pass left;
    the same dispute comes back only after every other dispute of its thread, so the earlier escalate has
    long been answered. GET and acknowledge lists are taken as they are."""
    per_thread: list[list[str]] = [[] for _ in range(threads)]
    if kind != "escalate":
        for i, (dispute_id, _, _) in enumerate(found):
            per_thread[i % threads].append(str(dispute_id))
    else:
        shares = [found[t::threads] for t in range(threads)]
        for t, share in enumerate(shares):
            # A second pass only where a thread's list is long enough to keep the passes apart.
            passes = 1 if len(share) < 500 else len(STAGES) - 1
            for step in range(passes):
                for dispute_id, version, stage in share:
                    if STAGES.index(stage) + step < len(STAGES) - 1:
                        per_thread[t].append(f"{dispute_id} {version + step}")
                if sum(len(p) for p in per_thread) >= needed * 2:
                    break
    for t, lines in enumerate(per_thread):
        Path(f"{prefix}.{t}").write_text("\n".join(lines) + "\n" if lines else "")
    return sum(len(p) for p in per_thread)


# ---------------------------------------------------------------------------------------------------------
# Load


@dataclass
class Load:
    """Both servers on one engine, with what is needed to drive them."""

    label: str
    ours: Ours
    bare: Bare
    servers: dict[str, Server]
    tokens: dict[str, str]
    folder: Path
    threads: int
    connections: int
    bystanders: list[int]  # the bench's other processes (the SMTP sink)
    seed_cap: int  # at most this many disputes raised through ours' use case for one acknowledge run
    rates: dict[tuple[str, str], float] = field(default_factory=dict)
    seeded: dict[str, float] = field(default_factory=dict)

    def prepare(self, app: str, kind: str, seconds: float) -> tuple[str, int]:
        """The list file prefix for wrk, topped up so that it outlasts `seconds` at the rate seen so far, and
        how many disputes were raised for it."""
        if kind == "raise":
            return "-", 0
        rate = self.rates.get((app, kind), 1500.0 if app == "ours" else 4000.0)
        needed = int(rate * seconds * 1.5) + 200
        source: Ours | Bare = self.ours if app == "ours" else self.bare
        limit = 5000 if kind == "get" else needed * 3
        prefix = self.folder / f"{app}-{kind}"
        found = source.targets(kind, limit)
        count = write_targets(prefix, kind, found, self.threads, needed)
        if kind == "get" or count >= needed:
            return str(prefix), 0
        if kind == "acknowledge":
            # An acknowledge of a dispute already acknowledged is still allowed, so this list may run out
            # (the requests after are counted as `reused`): ours' raise use case is too slow to raise
            # more than a round's worth each time.
            more = needed - count + 50
            if app == "ours":
                more = min(more, self.seed_cap)
        else:
            # An escalate list must not run out. A thread walks its disputes up the ladder in passes once
            # it has 500 of them.
            more = max((needed - count) // (len(STAGES) - 1) + 50, 500 * self.threads + 50 - len(found))
        self.seeded[app] = self.seeded.get(app, 0.0) + source.raise_disputes(more)
        found = source.targets(kind, limit)
        write_targets(prefix, kind, found, self.threads, needed)
        return str(prefix), more

    def quiesce(self, timeout: float = 180.0) -> float:
        """Wait until ours has sent every email queued so far and both servers are idle; returns seconds."""
        started = last_change = time.monotonic()
        pending = self.ours.emails_pending()
        # Emails that keep failing wait for their next attempt: stop waiting once the count stops falling.
        while pending and time.monotonic() - last_change < 10 and time.monotonic() - started < timeout:
            time.sleep(0.25)
            now_pending = self.ours.emails_pending()
            if now_pending < pending:
                last_change = time.monotonic()
            pending = now_pending
        while time.monotonic() - started < timeout:
            before = {name: cpu_seconds(s.pid) for name, s in self.servers.items()}
            time.sleep(0.3)
            busy = max(cpu_seconds(s.pid) - before[name] for name, s in self.servers.items())
            if busy < 0.3 * 0.1:
                break
        return time.monotonic() - started

    def run(self, app: str, kind: str, round_: int, seconds: int) -> Run:
        # Quiet first: requests wrk left in flight at the end of the last run may still be moving disputes
        # that the list is about to be made from. Quiet again after: raising disputes queues emails.
        waited = self.quiesce()
        prefix, seeded = self.prepare(app, kind, seconds)
        if seeded:
            waited += self.quiesce()
        server = self.servers[app]
        argv = ["wrk", f"-t{self.threads}", f"-c{self.connections}", f"-d{seconds}s", "--timeout", "10s"]
        argv += ["-s", str(BENCH / "api.lua"), f"http://127.0.0.1:{server.port}", "--"]
        argv += [kind, self.tokens[CALLER[kind]], prefix]
        watched = [s.pid for s in self.servers.values()] + self.bystanders + [os.getpid()]
        mine = sum(cpu_seconds(pid) for pid in watched)
        server_before = cpu_seconds(server.pid)
        pg_before = postgres_cpu() if self.label == "postgres" else {}
        busy_before = machine_busy_seconds()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_s = (children.ru_utime - children_before.ru_utime) + (
            children.ru_stime - children_before.ru_stime
        )
        server_s = cpu_seconds(server.pid) - server_before
        pg_s = postgres_seconds_since(pg_before) if self.label == "postgres" else 0.0
        others = machine_busy_seconds() - busy_before - wrk_s - pg_s
        others -= sum(cpu_seconds(pid) for pid in watched) - mine
        line = next((x for x in result.stdout.splitlines() if x.startswith("WRK-RESULT ")), None)
        if result.returncode != 0 or line is None:
            raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        w = json.loads(line.removeprefix("WRK-RESULT "))
        duration = w["duration_us"] / 1e6
        run = Run(
            database=self.label,
            app=app,
            kind=kind,
            round=round_,
            seconds=duration,
            requests=w["requests"],
            rate=w["requests"] / duration,
            p50_ms=w["p50_us"] / 1000,
            p99_ms=w["p99_us"] / 1000,
            max_ms=w["max_us"] / 1000,
            non2xx=w["non2xx"],
            socket_errors=w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"],
            reused=w["reused"],
            first_refusal=w["first_refusal"],
            server_cores=server_s / wall,
            wrk_cores=wrk_s / wall,
            postgres_cores=pg_s / wall,
            other_cores=max(0.0, others / wall),
        )
        self.rates[(app, kind)] = max(self.rates.get((app, kind), 0.0), run.rate)
        flag = "" if run.valid else f"  INVALID: {run.non2xx} non-2xx ({run.first_refusal[:80]})"
        label = "warm-up" if round_ == 0 else f"round {round_}"
        print(
            f"[{self.label}] {kind:<11} {app:<4} {label:<7} {run.rate:7.0f} req/s  p50 {run.p50_ms:6.1f} ms"
            f"  p99 {run.p99_ms:6.1f} ms  server {run.server_cores:.2f} cores, wrk {run.wrk_cores:.2f}, "
            f"others {run.other_cores:.2f} (quiet after {waited:.1f} s){flag}",
            flush=True,
        )
        return run


def load_test(
    label: str,
    dbs: Databases,
    keys: Secrets,
    sizes: Sizes,
    args: argparse.Namespace,
    smtp: tuple[int, int],
    logs: Path,
) -> tuple[list[Run], dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix=f"lists-{label}-", dir=dbs.folder))
    logs = logs / label
    logs.mkdir()
    ours = Ours(dbs.new("ours"), keys)
    ours.add_staff()
    seed_s = ours.raise_disputes(200)
    bare_url = dbs.new("bare")
    bare = Bare(bare_url)
    bare.raise_disputes(200)
    print(f"[{label}] ours: raised 200 disputes through the raise use case in {seed_s:.1f} s")
    servers = {
        "ours": serve_ours(ours.url, keys, smtp[0], logs / "ours.log"),
        "bare": serve_bare(bare_url, keys, logs / "bare.log"),
    }
    facts: dict[str, Any] = {}
    try:
        for server in servers.values():
            server.wait_ready()
        tokens = {email: token(keys, email) for email in {IRO_EMAIL, TM_EMAIL}}
        first = ours.targets("get", 1)[0][0]
        for name, server in servers.items():
            bare_first = bare.targets("get", 1)[0][0]
            path = f"/api/v1/disputes/{first if name == 'ours' else bare_first}"
            status, body = call(server.port, "GET", path, tokens[IRO_EMAIL])
            if status != 200:
                raise SystemExit(f"{name}: GET {path} answered {status}: {body[:300]!r}")
        time.sleep(1)
        facts["idle_rss"] = memory_mib(servers["ours"].pid)["VmRSS"]
        facts["bare_idle_rss"] = memory_mib(servers["bare"].pid)["VmRSS"]
        print(f"[{label}] ours idle: RSS {facts['idle_rss']:.1f} MiB (bare {facts['bare_idle_rss']:.1f} MiB)")
        load = Load(
            label,
            ours,
            bare,
            servers,
            tokens,
            folder,
            args.threads,
            args.connections,
            bystanders=[smtp[1]],
            seed_cap=sizes.seed_cap,
        )
        runs: list[Run] = []
        for kind in args.kinds:
            for app in APPS:
                runs.append(load.run(app, kind, 0, sizes.warmup))
            for round_ in range(1, sizes.rounds + 1):
                # Alternate which app goes first, so neither always follows the other's leftovers.
                order = APPS if round_ % 2 else APPS[::-1]
                for app in order:
                    runs.append(load.run(app, kind, round_, sizes.duration))
        load.quiesce()
        facts["loaded_rss"] = memory_mib(servers["ours"].pid)
        facts["seeded_seconds"] = load.seeded
    finally:
        for server in servers.values():
            server.stop()
        ours.engine.dispose()
        bare.engine.dispose()
    levels: dict[str, int] = {}
    for line in (logs / "ours.log").read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            level = str(json.loads(line).get("level"))
            levels[level] = levels.get(level, 0) + 1
    facts["ours_log_problems"] = sum(levels.get(level, 0) for level in ("warning", "error", "critical"))
    logged = (logs / "ours.log").read_text(errors="replace") + (logs / "bare.log").read_text(errors="replace")
    facts["locked"] = logged.count("database is locked")
    facts["logs"] = str(logs)
    return runs, facts


# ---------------------------------------------------------------------------------------------------------
# Statements per request, start-up, memory


class Recorder:
    """Transactions, each with its statements, as tests/recording.py counts them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[list[str]] = []

    def __enter__(self) -> Recorder:
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine, "before_cursor_execute", self._statement)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "before_cursor_execute", self._statement)

    def _begin(self, conn: Any) -> None:
        self.seen.append([])

    def _statement(self, conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.strip().upper().startswith("BEGIN"):
            return  # SQLite's BEGIN (IMMEDIATE), issued from the begin event itself
        if self.seen:
            self.seen[-1].append(sql.strip())


def count_statements(label: str, dbs: Databases, keys: Secrets) -> dict[str, dict[str, tuple[int, int]]]:
    """{app: {kind: (transactions, statements)}} for one request of each kind, after one to warm up."""
    from fastapi.testclient import TestClient

    from api.app import Mode, create_app

    ours = Ours(dbs.new("statements"), keys)
    ours.add_staff()
    ours.engine.dispose()
    bare_url = dbs.new("statements_bare")
    Bare(bare_url).engine.dispose()
    headers = {email: {"Authorization": f"Bearer {token(keys, email)}"} for email in (IRO_EMAIL, TM_EMAIL)}
    counts: dict[str, dict[str, tuple[int, int]]] = {}

    def once(client: Any, engine: Engine) -> dict[str, tuple[int, int]]:
        iro, tm = headers[IRO_EMAIL], headers[TM_EMAIL]
        found: dict[str, tuple[int, int]] = {}
        path = ""
        steps: list[tuple[str, int, Callable[[], Any]]] = [
            ("raise", 201, lambda: client.post("/api/v1/disputes", json=RAISE_FIELDS, headers=iro)),
            ("get", 200, lambda: client.get(path, headers=iro)),
            ("acknowledge", 200, lambda: client.post(f"{path}/actions/acknowledge", json={}, headers=tm)),
            (
                "escalate",
                200,
                lambda: client.post(
                    f"{path}/actions/escalate",
                    json={"reason": ESCALATE_REASON, "expected_version": 2},
                    headers=iro,
                ),
            ),
        ]
        for kind, status, send in steps:
            with Recorder(engine) as rec:
                response = send()
            if response.status_code != status:
                raise SystemExit(f"statements: {kind} answered {response.status_code}: {response.text[:300]}")
            found[kind] = (len(rec.seen), sum(map(len, rec.seen)))
            if kind == "raise":
                path = f"/api/v1/disputes/{response.json()['id']}"
        return found

    for app_name in APPS:
        if app_name == "ours":
            # The scheduler off, so that only the request's own statements are counted.
            app = create_app(settings_for(ours.url, keys, scheduler_enabled=False), mode=Mode.STRICT)
        else:
            app = create_bare_app(bare_url, keys.jwt)
        with TestClient(app) as client:
            once(client, app.state.engine)  # the first of each warms the caches
            counts[app_name] = once(client, app.state.engine)
        if app_name == "bare":
            app.state.engine.dispose()
    print(
        f"[{label}] statements (transactions) per request, ours / bare: "
        + ", ".join(
            f"{k} {counts['ours'][k][1]} ({counts['ours'][k][0]}) / {counts['bare'][k][1]}" for k in KINDS
        )
    )
    return counts


def time_startups(
    label: str, dbs: Databases, keys: Secrets, runs: int, smtp_port: int, logs: Path
) -> dict[str, list[float]]:
    """Seconds from launching ours to its first 200 from /readyz: `serve --no-migrate` on a migrated database,
    and `serve` (migrating) on an empty one."""
    migrated = Ours(dbs.new("ready"), keys)
    migrated.engine.dispose()
    times: dict[str, list[float]] = {"no_migrate": [], "migrating": []}
    for _ in range(runs):
        server = serve_ours(migrated.url, keys, smtp_port, logs / f"ready-{label}.log")
        try:
            times["no_migrate"].append(server.wait_ready())
        finally:
            server.stop()
    for _ in range(max(3, runs // 2)):
        server = serve_ours(dbs.new("migrating"), keys, smtp_port, logs / f"ready-{label}.log", migrate=True)
        try:
            times["migrating"].append(server.wait_ready())
        finally:
            server.stop()
    print(
        f"[{label}] ready: serve --no-migrate {', '.join(f'{t:.2f}' for t in times['no_migrate'])} s; "
        f"serve migrating an empty database {', '.join(f'{t:.2f}' for t in times['migrating'])} s"
    )
    return times


def bench_report_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", BENCH / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_report"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def memory_after_reports(
    labels: list[str], dbs: dict[str, Databases], keys: Secrets, count: int, smtp_port: int, logs: Path
) -> dict[str, dict[str, Any]]:
    """Ours' RSS after start-up on `count` disputes (all raised in one reporting year, the report's worst
    case), then after the annual report of that year in json, csv and svg."""
    from dispute_service import people
    from dispute_service.access import Actor
    from dispute_service.database import make_session_factory

    report = bench_report_module()
    loaders = [report.Loader(label, dbs[label].new("rss")) for label in labels]
    head: list[Any] = [0, report.audit.GENESIS_HASH]
    for disputes, entries in report.history(count, 1, loaders[0].policy_id, head):
        for loader in loaders:
            loader.load(disputes, entries)
    for loader in loaders:
        loader.finish(head)
    year = report.SNAPSHOT.year - 1
    found: dict[str, dict[str, Any]] = {}
    for loader in loaders:
        sessions = make_session_factory(loader.engine, audit_key=keys.audit)
        with sessions.begin() as session:
            manager = people.PersonData(name="Mira Manager", email=MANAGER_EMAIL, roles=["iro_manager"])
            people.add_person(
                session,
                Actor("bench", frozenset({"admin"}), "cli"),
                manager,
                datetime.now(UTC),
                audit_key=keys.audit,
            )
        loader.engine.dispose()
        server = serve_ours(loader.url, keys, smtp_port, logs / f"rss-{loader.label}.log")
        try:
            server.wait_ready()
            bearer = token(keys, MANAGER_EMAIL)
            status, _ = call(server.port, "GET", "/api/v1/disputes?limit=1", bearer)
            assert status == 200, status
            time.sleep(1)
            idle = memory_mib(server.pid)["VmRSS"]
            seconds = {}
            for fmt in ("json", "csv", "svg"):
                started = time.perf_counter()
                status, body = call(
                    server.port, "GET", f"/api/v1/reports/annual?year={year}&format={fmt}", bearer
                )
                seconds[fmt] = time.perf_counter() - started
                if status != 200:
                    raise SystemExit(f"report {fmt} answered {status}: {body[:300]!r}")
            time.sleep(1)
            after = memory_mib(server.pid)
        finally:
            server.stop()
        found[loader.label] = {
            "idle": idle,
            "after": after["VmRSS"],
            "peak": after["VmHWM"],
            "seconds": seconds,
        }
        print(
            f"[{loader.label}] {count:,} disputes: RSS idle {idle:.1f} MiB; after the {year} report in json, "
            f"csv and svg {after['VmRSS']:.1f} MiB (peak {after['VmHWM']:.1f} MiB); report "
            + ", ".join(f"{f} {s:.2f} s" for f, s in seconds.items())
        )
    return found


# ---------------------------------------------------------------------------------------------------------
# The table


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_rows(runs: list[Run], label: str) -> list[Row]:
    rows = []
    for kind in KINDS:
        timed = {app: [r for r in runs if r.app == app and r.kind == kind and r.round > 0] for app in APPS}
        if not timed["ours"]:
            continue
        valid = all(r.valid for app in APPS for r in timed[app])
        ours_rate, bare_rate = (median([r.rate for r in timed[app]]) for app in APPS)
        ratio = ours_rate / bare_rate
        ratios = [o.rate / b.rate for o, b in zip(timed["ours"], timed["bare"], strict=True)]
        errors = sum(r.non2xx + r.socket_errors for app in APPS for r in timed[app])
        rows.append(
            Row(
                f"{kind}: req/s ours / bare",
                label,
                f"{ours_rate:.0f} / {bare_rate:.0f} = {ratio:.2f} "
                f"(rounds {min(ratios):.2f}-{max(ratios):.2f})",
                f">= {TARGET_RATIO}",
                verdict(ratio >= TARGET_RATIO) if valid else "invalid",
            )
        )
        p50, p99 = median([r.p50_ms for r in timed["ours"]]), median([r.p99_ms for r in timed["ours"]])
        worst = max(r.p99_ms for r in timed["ours"])
        bare_p50, bare_p99 = (
            median([r.p50_ms for r in timed["bare"]]),
            median([r.p99_ms for r in timed["bare"]]),
        )
        has_target = kind in TARGET_P99_KINDS
        rows.append(
            Row(
                f"{kind}: p50 / p99 ours (bare)",
                label,
                f"{p50:.1f} / {p99:.1f} ms, worst p99 {worst:.1f} ({bare_p50:.1f} / {bare_p99:.1f})",
                f"p99 <= {TARGET_P99_MS:g} ms" if has_target else "",
                (verdict(p99 <= TARGET_P99_MS) if valid else "invalid") if has_target else "",
            )
        )
        if errors:
            rows.append(Row(f"{kind}: non-2xx and socket errors", label, str(errors), "0", "invalid"))
    return rows


def build_rows(
    results: dict[str, Any], sizes: Sizes, args: argparse.Namespace
) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    for label in ("sqlite", "postgres"):
        r = results.get(label)
        if r is None:
            continue
        if r.get("skipped"):
            rows.append(Row("PostgreSQL", label, "NOT RUN: " + r["skipped"], "", "missed"))
            continue
        if "statements" in r:
            for kind in KINDS:
                tx, st = r["statements"]["ours"][kind]
                _, bare_st = r["statements"]["bare"][kind]
                limit = TARGET_STATEMENTS.get(kind)
                rows.append(
                    Row(
                        f"{kind}: statements in transactions (bare)",
                        label,
                        f"{st} in {tx} ({bare_st} in 1)",
                        f"<= {limit} in 1" if limit else "",
                        verdict(st <= limit and tx == 1) if limit else "",
                    )
                )
        if "startup" in r:
            times = r["startup"]["no_migrate"]
            ready = median(times)
            rows.append(
                Row(
                    "ready: serve --no-migrate to /readyz 200",
                    label,
                    f"{ready:.2f} s (median of {len(times)}; max {max(times):.2f})",
                    f"<= {TARGET_READY_S:g} s",
                    verdict(ready <= TARGET_READY_S),
                )
            )
            rows.append(
                Row(
                    "ready: serve, migrating an empty database",
                    label,
                    f"{median(r['startup']['migrating']):.2f} s (median of {len(r['startup']['migrating'])})",
                )
            )
        if "load" in r:
            facts = r["load"]["facts"]
            rows.append(
                Row(
                    "RSS idle (after start-up and a first request)",
                    label,
                    f"{facts['idle_rss']:.1f} MiB (bare {facts['bare_idle_rss']:.1f})",
                    f"<= {TARGET_IDLE_MIB:g} MiB",
                    verdict(facts["idle_rss"] <= TARGET_IDLE_MIB),
                )
            )
            runs = [Run(**x) for x in r["load"]["runs"]]
            rows.extend(load_rows(runs, label))
            loaded = facts["loaded_rss"]
            rows.append(
                Row("RSS after the load (peak)", label, f"{loaded['VmRSS']:.1f} MiB ({loaded['VmHWM']:.1f})")
            )
            timed = [x for x in runs if x.round > 0]
            noisy = [x for x in timed if x.other_cores > NOISY_CORES]
            notes.append(
                f"{label}: wrk took at most {max(x.wrk_cores for x in timed):.2f} of a core; ours' server "
                f"{median([x.server_cores for x in timed if x.app == 'ours']):.2f} cores (median)"
                + (
                    f", PostgreSQL {median([x.postgres_cores for x in timed]):.2f} (median)"
                    if label == "postgres"
                    else ""
                )
                + f"; other work on the machine up to {max(x.other_cores for x in timed):.2f} cores"
                + (
                    f" ({len(noisy)} of {len(timed)} runs above {NOISY_CORES} cores: figures disturbed)"
                    if noisy
                    else ""
                )
            )
            reused = sum(x.reused for x in timed if x.kind == "acknowledge")
            if reused:
                notes.append(
                    f"{label}: {reused} acknowledges went to a dispute already acknowledged (allowed)"
                )
            notes.append(
                f"{label}: 'database is locked' {facts['locked']} times in the servers' logs; ours logged "
                f"{facts['ours_log_problems']} warnings or errors"
            )
        if "rss" in r:
            m = r["rss"]
            rows.append(
                Row(
                    f"RSS after {m['count']:,} disputes and the report in json, csv, svg",
                    label,
                    f"{m['after']:.1f} MiB (idle {m['idle']:.1f}, peak {m['peak']:.1f})",
                    f"<= {TARGET_LOADED_MIB:g} MiB",
                    verdict(m["after"] <= TARGET_LOADED_MIB),
                )
            )
    if "load" in args.parts:
        notes.append(
            f"{args.connections} connections, wrk -t{args.threads}, {sizes.rounds} rounds of "
            f"{sizes.duration} s after {sizes.warmup} s of warm-up, ours and bare alternating; req/s, p50 "
            "and p99 are medians over the rounds"
        )
        notes.append(
            "client (wrk), both servers, the SMTP sink and PostgreSQL share this machine's "
            f"{os.cpu_count()} cores; ours runs strict with the scheduler on, and bare is the script's own "
            "FastAPI + SQLAlchemy Core app in its own database and tables"
        )
    return rows, notes


# ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true", help="3 rounds of 2 s, 20,000 disputes for the RSS")
    preset.add_argument("--full", action="store_true", help="5 rounds of 10 s")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=int, help="seconds of each timed run")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per app and kind of request")
    parser.add_argument("--rss-disputes", type=int)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the machine has 2 cores)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DISPUTES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--json", type=Path, help="also write the rows, the runs and the facts here")
    parser.add_argument("--serve-bare", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare_here(args.serve_bare[0], int(args.serve_bare[1]))
        return
    base = PRESETS["quick" if args.quick else "full" if args.full else "default"]
    sizes = replace(
        base,
        rounds=args.rounds or base.rounds,
        duration=args.duration or base.duration,
        warmup=args.warmup if args.warmup is not None else base.warmup,
        rss_disputes=args.rss_disputes or base.rss_disputes,
    )
    if sizes.rounds < 3:
        print("note: fewer than 3 rounds; issue 11 asks for at least three", file=sys.stderr)
    if "load" in args.parts and shutil.which("wrk") is None:
        raise SystemExit("bench/api.py needs wrk: `apt-get install -y wrk` (Debian and Ubuntu package it)")
    labels = ["sqlite", "postgres"] if args.only is None else [args.only]
    results: dict[str, Any] = {}
    if "postgres" in labels:
        problem = postgres_problem(args.postgres)
        if problem:
            banner = "!" * 100
            print(f"{banner}\n!!! PostgreSQL at {args.postgres} is unreachable ({problem}).")
            print(f"!!! SKIPPING every PostgreSQL figure; set DISPUTES_TEST_POSTGRES_URL.\n{banner}")
            labels.remove("postgres")
            results["postgres"] = {"skipped": f"unreachable ({problem})"}
    # The in-process apps (statement counts) and the loaders would log every change; keep warnings only.
    from dispute_service.logs import configure_logging

    configure_logging("json", level=logging.WARNING)
    keys = Secrets()
    # The bench's own report loader signs its audit entries with the settings' key: make it the servers'.
    os.environ["DISPUTES_AUDIT_KEY"] = keys.audit
    started = time.perf_counter()
    logs = Path(tempfile.mkdtemp(prefix="bench-api-logs-"))
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        folder = Path(tmp)
        dbs = {label: Databases(label, folder, args.postgres) for label in labels}
        try:
            with smtp_sink(logs / "smtp.log") as smtp:
                for label in labels:
                    results.setdefault(label, {})
                    if "statements" in args.parts:
                        results[label]["statements"] = count_statements(label, dbs[label], keys)
                    if "startup" in args.parts:
                        results[label]["startup"] = time_startups(
                            label, dbs[label], keys, sizes.startup_runs, smtp[0], logs
                        )
                    if "load" in args.parts:
                        runs, facts = load_test(label, dbs[label], keys, sizes, args, smtp, logs)
                        results[label]["load"] = {"runs": [asdict(r) for r in runs], "facts": facts}
                    dbs[label].drop_all()
                if "rss" in args.parts and labels:
                    found = memory_after_reports(labels, dbs, keys, sizes.rss_disputes, smtp[0], logs)
                    for label, m in found.items():
                        results[label]["rss"] = {**m, "count": sizes.rss_disputes}
        finally:
            for d in dbs.values():
                d.drop_all()
    elapsed = time.perf_counter() - started
    rows, notes = build_rows(results, sizes, args)
    notes.append(f"bench/api.py took {elapsed / 60:.1f} min; the servers' logs are in {logs}")
    print_table(rows, notes, "bench/api.py: issue 11's figures, each beside its target")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"bench": "api", "rows": [asdict(r) for r in rows], "notes": notes, "results": results},
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    # Run as a script, this file's folder comes first on sys.path, where its name would hide the project's
    # `api` package: the functions above import the project only when called, after this.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
    main()
