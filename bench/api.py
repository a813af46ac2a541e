"""The API under load, side by side with a bare FastAPI app doing the same SQL, on SQLite and PostgreSQL.

Starts the real server (`dispute-service serve --no-migrate`, uvicorn, one worker, strict settings, the
scheduler and the email dispatcher running against an in-process SMTP sink) and, in the same run, a bare
FastAPI app defined at the bottom of this file: SQLAlchemy Core, no auth, no ORM, no state machine, no
audit chain, no outbox, one transaction per request. For acknowledge and escalate it looks the caller up,
locks the dispute's row, updates it and inserts an audit row; for GET it looks the caller up and reads the
row; for raise it looks the caller up and inserts a row and an audit row. `wrk` drives both at 16
connections, alternating ours and bare, over several rounds; the figures are each one's median round.

It also prints idle RSS, RSS after 100,000 disputes and the annual report in every format, the dispute
list at offset 50,000 and by cursor on those 100,000, the time from `serve --no-migrate` to `/readyz`
(and with the migration check), and the statements and transactions per request, counted by SQLAlchemy
events on the app's engine.

    apt-get install wrk                                 # Debian's package; the bench needs it
    .venv/bin/python bench/api.py                       # SQLite, then PostgreSQL if it answers
    .venv/bin/python bench/api.py --quick --only sqlite # a short run while working
    .venv/bin/python bench/api.py --results out.jsonl   # also one JSON line per figure (make bench)

Client and server share this machine's cores: wrk runs with one thread, and its CPU is not the server's.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
IRO, TM, ADMIN = "iro@bench.example", "tm@bench.example", "admin@bench.example"
REQUESTS = ("acknowledge", "escalate", "get", "raise")
RAISE_BODY = {
    "child_ref": "LCS-BENCH-1",
    "case_type": "looked_after",
    "categories": ["permanency_delay"],
    "summary": "The permanence plan has drifted.",
    "team_manager_email": TM,
}
# Python puts this script's folder on the path, where this file would shadow the service's own `api`
# package: the folder comes off it, and the sibling modules (`results`, `report`) are loaded by file.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def _sibling(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


Results = _sibling("results").Results

# ----------------------------------------------------------------------------------------------- setup


def server_env(url: str, smtp_port: int) -> dict[str, str]:
    """A strict server's settings: 32-byte secrets, mail and links on loopback."""
    return {
        **os.environ,
        "DISPUTES_DATABASE_URL": url,
        "DISPUTES_JWT_SECRET": SECRET,
        "DISPUTES_LINK_SECRET": SECRET,
        "DISPUTES_AUDIT_KEY": SECRET,
        "DISPUTES_SMTP_HOST": "127.0.0.1",
        "DISPUTES_SMTP_PORT": str(smtp_port),
        "DISPUTES_PUBLIC_BASE_URL": "http://localhost:8000",
        "DISPUTES_LOG_FORMAT": "json",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(url: str) -> Any:
    from dispute_service.config import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        jwt_secret=SECRET,
        link_secret=SECRET,
        audit_key=SECRET,
        smtp_host="127.0.0.1",
        public_base_url="http://localhost:8000",
        scheduler_enabled=False,
        log_format="json",
    )


def token(email: str) -> str:
    from api.auth import development_token

    return development_token(settings_for("sqlite://"), email, datetime.now(UTC), hours=6)


def seed(url: str, pool: int, fresh: int) -> tuple[list[str], list[str]]:
    """Migrate, add the staff, and raise `pool` disputes to act on at random and `fresh` ones, each
    escalated once, through the service's own raise use case."""
    from dispute_service.access import Actor
    from dispute_service.database import make_engine, make_session_factory, upgrade
    from dispute_service.disputes import raise_dispute
    from dispute_service.inputs import RaiseInput
    from dispute_service.models import Person
    from states.policy import load_default_policy

    upgrade(url, audit_key=SECRET)
    engine = make_engine(url, pool_size=2, max_overflow=0)
    sessions = make_session_factory(engine, audit_key=SECRET)
    policy = load_default_policy()
    now = datetime.now(UTC)
    with sessions.begin() as session:
        for name, email, roles in (
            ("Bench IRO", IRO, ["iro"]),
            ("Bench Team Manager", TM, ["team_manager"]),
            ("Bench Admin", ADMIN, ["admin", "iro_manager"]),
        ):
            session.add(
                Person(name=name, email=email, roles=roles, active=True, created_at=now, updated_at=now)
            )
    actor = Actor(IRO, frozenset({"iro"}))
    data = RaiseInput(**RAISE_BODY)  # type: ignore[arg-type]
    ids: list[str] = []
    while len(ids) < pool + fresh:
        with sessions.begin() as session:
            for _ in range(min(500, pool + fresh - len(ids))):
                ids.append(str(raise_dispute(session, policy, actor, data, now).dispute.id))
    with engine.begin() as conn:
        for statement in BARE_TABLES[engine.dialect.name].split(";"):
            conn.exec_driver_sql(statement)
    engine.dispose()
    return ids[:pool], ids[pool:]


@contextlib.contextmanager
def scratch_postgres(server: str) -> Iterator[str | None]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from dispute_service.database import normalise_url

    base = normalise_url(server)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        print(f"!! PostgreSQL at {server} does not answer ({type(exc).__name__}): PostgreSQL is left out")
        yield None
        return
    name = f"bench_api_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --------------------------------------------------------------------------------------------- servers


@dataclass
class Server:
    label: str
    port: int
    process: subprocess.Popen[bytes]
    ready_after: float = 0.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_ready(base: str, process: subprocess.Popen[bytes], path: str, limit: float = 60.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {base} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(base + path, timeout=2) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{base}{path} did not answer within {limit} s")


def start_ours(url: str, smtp_port: int, log: Path, *, migrate: bool = False) -> Server:
    port = free_port()
    command = [str(Path(sys.executable).parent / "dispute-service"), "serve", "--port", str(port)]
    if not migrate:
        command.append("--no-migrate")
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=server_env(url, smtp_port), stdout=out, stderr=out)
    server = Server("ours", port, process)
    server.ready_after = wait_ready(server.base, process, "/readyz")
    return server


def start_bare(url: str, log: Path) -> Server:
    port = free_port()
    command = [sys.executable, __file__, "--serve-bare", "--port", str(port), "--db", url]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out)
    server = Server("bare", port, process)
    server.ready_after = wait_ready(server.base, process, "/healthz")
    return server


@contextlib.contextmanager
def smtp_sink() -> Iterator[int]:
    """An SMTP server that accepts and drops every message, so the dispatcher's work is real."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


# ------------------------------------------------------------------------------------------------- wrk

LUA = """
local ids = {}
local path, walk, method, suffix, body = %(ids)s, %(walk)s, %(method)s, %(suffix)s, %(body)s
local headers = {["Authorization"] = %(auth)s, ["X-Email"] = %(email)s, ["Content-Type"] = "application/json"}
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  for line in io.lines(path) do ids[#ids + 1] = line end
  step = %(threads)d
  at = tid + 1
  math.randomseed(1000 + tid)
end
function request()
  local id
  if walk then
    id = ids[((at - 1) %% #ids) + 1]
    at = at + step
  else
    id = ids[math.random(#ids)]
  end
  local target = "/api/v1/disputes" .. (id ~= "" and ("/" .. id) or "") .. suffix
  return wrk.format(method, target, headers, body)
end
"""

SHAPES: dict[str, dict[str, Any]] = {
    "acknowledge": {"method": "POST", "suffix": "/actions/acknowledge", "body": "{}", "who": TM},
    "escalate": {
        "method": "POST",
        "suffix": "/actions/escalate",
        "body": json.dumps({"reason": "The plan has not moved.", "expected_version": 1}),
        "who": IRO,
    },
    "get": {"method": "GET", "suffix": "", "body": None, "who": IRO},
    "raise": {"method": "POST", "suffix": "", "body": json.dumps(RAISE_BODY), "who": IRO},
}


def _lua(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)  # a JSON string is a valid Lua string literal here (ASCII, escaped)


def write_script(folder: Path, name: str, ids: list[str], walk: bool, threads: int) -> Path:
    shape = SHAPES[name]
    ids_file = folder / f"{name}-{uuid.uuid4().hex[:6]}.ids"
    ids_file.write_text("\n".join(ids or [""]) + "\n")
    script = folder / f"{name}.lua"
    script.write_text(
        LUA
        % {
            "ids": _lua(str(ids_file)),
            "walk": _lua(walk),
            "method": _lua(shape["method"]),
            "suffix": _lua(shape["suffix"]),
            "body": _lua(shape["body"]),
            "auth": _lua(f"Bearer {token(shape['who'])}"),
            "email": _lua(shape["who"]),
            "threads": threads,
        }
    )
    return script


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(base: str, script: Path, seconds: float, connections: int, threads: int) -> Run:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if "99" not in latency:
        raise RuntimeError(f"wrk printed no latency distribution:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = re.search(r"(\d+) requests in", out)
    return Run(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        errors=(int(errors.group(1)) if errors else 0)
        + (sum(int(g) for g in socket_errors.groups()) if socket_errors else 0),
        requests=int(requests.group(1)) if requests else 0,
    )


def median_run(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.rps)
    middle = ordered[len(ordered) // 2]
    return Run(
        middle.rps, middle.p50_ms, middle.p99_ms, sum(r.errors for r in runs), sum(r.requests for r in runs)
    )


# --------------------------------------------------------------------------------------------- phases


@dataclass
class Load:
    seconds: float
    rounds: int
    connections: int = 16
    threads: int = 1
    runs: dict[tuple[str, str], list[Run]] = field(default_factory=dict)


def load_phase(label: str, url: str, smtp_port: int, load: Load, tmp: Path, results: Results) -> None:
    expected_rate = 700  # above what either server reaches here, so the escalations never run out
    fresh = int(expected_rate * load.seconds * load.rounds) + 500
    started = time.perf_counter()
    pool, escalatable = seed(url, pool=1000, fresh=fresh)
    print(
        f"[{label}] seeded {len(pool) + len(escalatable):,} disputes in {time.perf_counter() - started:.0f} s"
    )
    log = tmp / f"{label}-servers.log"
    ours, bare = start_ours(url, smtp_port, log), start_bare(url, log)
    try:
        scripts = {}
        for name in REQUESTS:
            for app in ("ours", "bare"):
                # Each escalation of ours needs a dispute still at version 1; the bare app checks nothing.
                walk = name == "escalate" and app == "ours"
                ids = [] if name == "raise" else (escalatable if walk else pool)
                scripts[(name, app)] = write_script(tmp / app, name, ids, walk, load.threads)
        warm = min(2.0, load.seconds)
        for server in (ours, bare):
            wrk(server.base, scripts[("get", server.label)], warm, load.connections, load.threads)
        results.add(label, "idle RSS", ours.rss_mib(), "MiB", target=90, higher_is_better=False)
        for name in REQUESTS:
            for _ in range(load.rounds):
                for server in (ours, bare):
                    run = wrk(
                        server.base,
                        scripts[(name, server.label)],
                        load.seconds,
                        load.connections,
                        load.threads,
                    )
                    load.runs.setdefault((name, server.label), []).append(run)
            o, b = median_run(load.runs[(name, "ours")]), median_run(load.runs[(name, "bare")])
            ratio = o.rps / b.rps if b.rps else float("nan")
            print(
                f"[{label}] {name:<11} ours {o.rps:7.0f} req/s p50 {o.p50_ms:6.1f} ms p99 {o.p99_ms:7.1f} ms"
                f" | bare {b.rps:7.0f} req/s p50 {b.p50_ms:6.1f} ms p99 {b.p99_ms:7.1f} ms"
                f" | ours/bare {ratio:.2f} | errors {o.errors}/{b.errors}"
            )
            results.add(label, f"{name} ours/bare", ratio, "", target=0.6)
            results.add(label, f"{name} req/s ours (bare)", o.rps, f"({b.rps:.0f})")
            results.add(label, f"{name} p50 ours (bare)", o.p50_ms, f"ms ({b.p50_ms:.1f})")
            target = 50 if name in ("acknowledge", "get") else None
            results.add(
                label,
                f"{name} p99 ours (bare)",
                o.p99_ms,
                f"ms ({b.p99_ms:.1f})",
                target=target,
                higher_is_better=False,
            )
            if o.errors or b.errors:
                results.add(
                    label,
                    f"{name} non-2xx ours/bare",
                    o.errors,
                    f"/ {b.errors}",
                    target=0,
                    higher_is_better=False,
                )
    finally:
        ours.stop()
        bare.stop()


def startup_phase(label: str, url: str, smtp_port: int, tmp: Path, results: Results, tries: int) -> None:
    log = tmp / f"{label}-startup.log"
    for migrate, name in (
        (False, "ready from serve --no-migrate"),
        (True, "ready from serve (migration check)"),
    ):
        times = []
        for _ in range(tries):
            server = start_ours(url, smtp_port, log, migrate=migrate)
            times.append(server.ready_after)
            server.stop()
        results.add(
            label,
            name,
            statistics.median(times),
            "s",
            target=1.0 if not migrate else None,
            higher_is_better=False,
        )
        print(f"[{label}] {name}: median {statistics.median(times):.2f} s, max {max(times):.2f} s of {tries}")


def big_phase(label: str, url: str, smtp_port: int, tmp: Path, results: Results, count: int) -> None:
    """RSS after `count` disputes and a report in every format; the list deep in them."""
    report_bench = _sibling("report")  # bench/report.py: its bulk loader

    from dispute_service.database import make_engine, make_session_factory
    from dispute_service.models import Person

    started = time.perf_counter()
    loader = report_bench.Loader(label, url)
    head: list[Any] = [0, report_bench.audit.GENESIS_HASH]
    for disputes, entries in report_bench.history(count, 2, loader.policy_id, head):
        loader.load(disputes, entries)
    loader.finish(head)
    loader.engine.dispose()
    engine = make_engine(url, pool_size=1, max_overflow=0)
    with make_session_factory(engine).begin() as session:
        now = datetime.now(UTC)
        session.add(
            Person(
                name="Bench Admin",
                email=ADMIN,
                roles=["admin", "iro_manager"],
                active=True,
                created_at=now,
                updated_at=now,
            )
        )
    engine.dispose()
    print(f"[{label}] loaded {loader.disputes:,} disputes in {time.perf_counter() - started:.0f} s")
    server = start_ours(url, smtp_port, tmp / f"{label}-big.log")
    headers = {"Authorization": f"Bearer {token(ADMIN)}"}

    def get(path: str) -> tuple[float, bytes]:
        t = time.perf_counter()
        with urllib.request.urlopen(
            urllib.request.Request(server.base + path, headers=headers), timeout=120
        ) as r:
            body = r.read()
        return time.perf_counter() - t, body

    try:
        results.add(
            label, "idle RSS, 100k disputes", server.rss_mib(), "MiB", target=90, higher_is_better=False
        )
        deep = max(count // 2, 1)
        offsets = [get(f"/api/v1/disputes?limit=50&offset={deep}")[0] for _ in range(5)]
        cursor = json.loads(get(f"/api/v1/disputes?limit=50&offset={deep - 50}")[1])["next"]
        cursors = [get(f"/api/v1/disputes?limit=50&after={cursor}")[0] for _ in range(5)]
        first = [get("/api/v1/disputes?limit=50")[0] for _ in range(5)]
        results.add(label, "list, first page", statistics.median(first) * 1000, "ms", higher_is_better=False)
        results.add(
            label, f"list, offset {deep:,}", statistics.median(offsets) * 1000, "ms", higher_is_better=False
        )
        results.add(
            label,
            f"list, cursor at {deep:,}",
            statistics.median(cursors) * 1000,
            "ms",
            higher_is_better=False,
        )
        for year in (2023, 2024):
            for fmt in ("json", "csv", "svg"):
                get(f"/api/v1/reports/annual?year={year}&format={fmt}")
        results.add(
            label,
            "RSS after 100k + every report",
            server.rss_mib(),
            "MiB",
            target=110,
            higher_is_better=False,
        )
    finally:
        server.stop()


def count_statements(label: str, url: str) -> dict[str, tuple[int, int]]:
    """Statements and transactions per request, counted on the real app's engine (TestClient)."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from api.app import Mode, create_app

    pool, fresh = seed(url, pool=2, fresh=2)
    counted: dict[str, tuple[int, int]] = {}
    with TestClient(create_app(settings_for(url), mode=Mode.STRICT)) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        seen: list[list[str]] = []
        event.listen(engine, "begin", lambda conn: seen.append([]))
        event.listen(
            engine,
            "before_cursor_execute",
            lambda conn, cursor, sql, *a: (
                seen[-1].append(sql) if seen and not sql.startswith("BEGIN") else None
            ),
        )
        for name in REQUESTS:
            shape = SHAPES[name]
            target = "" if name == "raise" else f"/{fresh.pop() if name == 'escalate' else pool[0]}"
            path = f"/api/v1/disputes{target}{shape['suffix']}"
            headers = {"Authorization": f"Bearer {token(shape['who'])}"}
            body = json.loads(shape["body"]) if shape["body"] else None
            client.request(shape["method"], path, json=body, headers=headers)  # warm: the policy's row exists
            if name == "escalate":
                path = f"/api/v1/disputes/{fresh.pop()}{shape['suffix']}"
            seen.clear()
            answer = client.request(shape["method"], path, json=body, headers=headers)
            assert answer.status_code < 300, answer.text
            counted[name] = (sum(len(t) for t in seen), len(seen))
    return counted


# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--seconds", type=float, default=8.0, help="each wrk run (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--big", type=int, default=100_000, help="disputes for the RSS and list figures")
    parser.add_argument(
        "--quick", action="store_true", help="3 s runs, 10,000 disputes: for working, not for the README"
    )
    parser.add_argument("--results", type=Path, help="append one JSON line per figure to this file")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DISPUTES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.db, args.port)
        return
    import api.app  # noqa: F401  - the service's package, before bench/report.py puts bench/ on the path
    from dispute_service.logs import configure_logging

    # The seeding raises thousands of disputes in this process: their log lines would bury the figures.
    configure_logging("json", level=logging.WARNING)

    if shutil.which("wrk") is None:
        sys.exit("bench/api.py needs wrk: apt-get install wrk (Debian's package)")
    if args.quick:
        args.seconds, args.big = 3.0, 10_000
    results = Results("api", args.results)
    load = Load(seconds=args.seconds, rounds=args.rounds)
    print(
        f"bench/api.py on {os.cpu_count()} cores: wrk -t{load.threads} -c{load.connections}, "
        f"{args.rounds} rounds of {args.seconds:g} s, ours and bare alternating; client and servers "
        "share the machine"
    )
    with tempfile.TemporaryDirectory() as folder, smtp_sink() as smtp_port, contextlib.ExitStack() as stack:
        tmp = Path(folder)
        (tmp / "ours").mkdir()
        (tmp / "bare").mkdir()
        databases: list[tuple[str, Any]] = []
        if args.only in (None, "sqlite"):
            databases.append(("sqlite", lambda name: f"sqlite:///{tmp / name}.db"))
        if args.only in (None, "postgres"):
            if stack.enter_context(scratch_postgres(args.postgres)) is not None:
                server = args.postgres

                def pg(name: str, server: str = server) -> str:
                    return stack.enter_context(scratch_postgres(server)) or ""

                databases.append(("postgres", pg))
        for label, make in databases:
            for name, (statements, transactions) in count_statements(label, make("statements")).items():
                target = {"acknowledge": 8, "get": 2}.get(name)
                results.add(
                    label,
                    f"{name} statements",
                    statements,
                    f"in {transactions} transaction(s)",
                    target=target,
                    higher_is_better=False,
                )
                print(f"[{label}] {name}: {statements} statements in {transactions} transaction(s)")
            url = make("load")
            load_phase(label, url, smtp_port, load, tmp, results)
            startup_phase(label, url, smtp_port, tmp, results, tries=3 if args.quick else 5)
            big_phase(label, make("big"), smtp_port, tmp, results, args.big)
    results.print_table()


# ------------------------------------------------------------------------------------------ bare app

BARE_TABLES = {
    "sqlite": "CREATE TABLE bare_audit (id INTEGER PRIMARY KEY, dispute_id TEXT, at TEXT, actor TEXT, "
    "trigger TEXT, details TEXT); CREATE TABLE bare_disputes (id TEXT PRIMARY KEY, child_ref TEXT, "
    "case_type TEXT, categories TEXT, summary TEXT, iro_email TEXT, stage TEXT, state TEXT, raised_at TEXT)",
    "postgresql": "CREATE TABLE bare_audit (id SERIAL PRIMARY KEY, dispute_id UUID, at TIMESTAMPTZ, "
    "actor TEXT, trigger TEXT, details TEXT); CREATE TABLE bare_disputes (id UUID PRIMARY KEY, "
    "child_ref TEXT, case_type TEXT, categories TEXT, summary TEXT, iro_email TEXT, stage TEXT, state TEXT, "
    "raised_at TIMESTAMPTZ)",
}


def serve_bare(url: str, port: int) -> None:
    """The bare app: the same SQL in one transaction per request, and nothing else."""
    import uvicorn
    from fastapi import FastAPI, Header
    from sqlalchemy import create_engine, event, text

    from dispute_service.database import normalise_url

    url = normalise_url(url)
    sqlite = url.startswith("sqlite")
    engine = create_engine(
        url, pool_size=20, max_overflow=40, connect_args={"check_same_thread": False} if sqlite else {}
    )
    if sqlite:

        @event.listens_for(engine, "connect")
        def _connect(dbapi: Any, _: Any) -> None:
            dbapi.isolation_level = None
            dbapi.execute("PRAGMA journal_mode=WAL")
            dbapi.execute("PRAGMA busy_timeout=30000")
            dbapi.execute("PRAGMA synchronous=NORMAL")

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read") else "BEGIN IMMEDIATE")

    def key(dispute_id: str) -> str:
        return uuid.UUID(dispute_id).hex if sqlite else dispute_id

    caller = text("SELECT email, roles, active FROM people WHERE email = :email")
    lock = text("SELECT id, version FROM disputes WHERE id = :id" + ("" if sqlite else " FOR UPDATE"))
    audit = text(
        "INSERT INTO bare_audit (dispute_id, at, actor, trigger, details) VALUES (:d, :at, :a, :t, '{}')"
    )
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/disputes/{dispute_id}")
    def get(dispute_id: str, x_email: str = Header()) -> dict[str, Any]:
        with engine.connect().execution_options(read=True) as conn, conn.begin():
            conn.execute(caller, {"email": x_email}).one()
            row = (
                conn.execute(text("SELECT * FROM disputes WHERE id = :id"), {"id": key(dispute_id)})
                .mappings()
                .one()
            )
        return dict(row)

    def act(dispute_id: str, email: str, trigger: str, change: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(caller, {"email": email}).one()
            row = conn.execute(lock, {"id": key(dispute_id)}).one()
            conn.execute(
                text(f"UPDATE disputes SET {change} WHERE id = :id"), {"id": key(dispute_id), "now": now}
            )
            conn.execute(audit, {"d": key(dispute_id), "at": now, "a": email, "t": trigger})
        return {"id": dispute_id, "version": row.version + 1}

    @app.post("/api/v1/disputes/{dispute_id}/actions/acknowledge")
    def acknowledge(dispute_id: str, x_email: str = Header()) -> dict[str, Any]:
        return act(dispute_id, x_email, "acknowledge", "acknowledged_at = :now, version = version + 1")

    @app.post("/api/v1/disputes/{dispute_id}/actions/escalate")
    def escalate(dispute_id: str, x_email: str = Header()) -> dict[str, Any]:
        return act(dispute_id, x_email, "escalate", "updated_at = :now, version = version + 1")

    @app.post("/api/v1/disputes", status_code=201)
    def raise_(body: dict[str, Any], x_email: str = Header()) -> dict[str, Any]:
        new, now = uuid.uuid4(), datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(caller, {"email": x_email}).one()
            conn.execute(
                text(
                    "INSERT INTO bare_disputes (id, child_ref, case_type, categories, summary, iro_email, "
                    "stage, state, raised_at) VALUES (:id, :c, :ct, :cat, :s, :i, 'quality_assurance', "
                    "'awaiting_response', :at)"
                ),
                {
                    "id": key(str(new)),
                    "c": body["child_ref"],
                    "ct": body["case_type"],
                    "cat": json.dumps(body["categories"]),
                    "s": body["summary"],
                    "i": x_email,
                    "at": now,
                },
            )
            conn.execute(audit, {"d": key(str(new)), "at": now, "a": x_email, "t": "raise"})
        return {"id": str(new)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
