"""The commands the API adds to the core's (`serve`, `token`, `openapi`), run in-process with Typer's
CliRunner. `serve` runs up to the point where uvicorn would take over: uvicorn.run is replaced by a recorder,
so these tests see the app it would serve and how."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner, Result

from api.app import Mode
from api.cli import app
from dispute_service.config import DEV_SECRET, MAKE_A_SECRET
from dispute_service.models import Person
from tests.factories import TEST_SECRET

Invoke = Callable[..., Result]
SECRET = "cli-test-secret-0123456789abcdef0123456789"
DOCKERFILE = Path(__file__).parents[2] / "Dockerfile"
# What a strict start needs beyond the defaults (whose mail server and link base are on loopback).
STRICT_ENV = {
    "DISPUTES_JWT_SECRET": TEST_SECRET,
    "DISPUTES_LINK_SECRET": TEST_SECRET,
    "DISPUTES_AUDIT_KEY": TEST_SECRET,
}


@pytest.fixture
def run(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """The CLI in a directory of its own holding a migrated ./disputes.db (the default database)."""
    # No stray .env or DISPUTES_* variable from the developer's shell may leak into what the CLI reads.
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("DISPUTES_")]:
        monkeypatch.delenv(name)
    shutil.copyfile(sqlite_template, tmp_path / "disputes.db")
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), env={"DISPUTES_JWT_SECRET": SECRET, **(env or {})})

    return invoke


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What `serve` hands to uvicorn, instead of serving it. Logging is left as the test runner set it."""
    calls: list[dict[str, Any]] = []

    def record(application: Any, **options: Any) -> None:
        calls.append({"app": application, **options})

    monkeypatch.setattr("uvicorn.run", record)
    monkeypatch.setattr("dispute_service.logs.configure_logging", lambda *args, **kwargs: None)
    return calls


# --- token ---------------------------------------------------------------------------------------------


def test_token_prints_a_jwt_for_the_email_as_its_last_word(run: Invoke) -> None:
    before = datetime.now(UTC).timestamp()
    result = run("token", "IRO@example.gov.uk")
    assert result.exit_code == 0, result.output
    token = result.stdout.split()[-1]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["email"] == "iro@example.gov.uk"
    assert claims["exp"] > before
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "some-other-secret-0123456789abcdef01234567", algorithms=["HS256"])
    # Signed with the configured secret, so there is nothing to warn about.
    assert result.stderr == ""


def test_token_hours_sets_the_expiry(run: Invoke) -> None:
    result = run("token", "iro@example.gov.uk", "--hours", "1")
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.split()[-1], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600


def test_token_without_a_secret_is_a_development_token_and_says_so(run: Invoke) -> None:
    result = run("token", "iro@example.gov.uk", env={"DISPUTES_JWT_SECRET": DEV_SECRET})
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.split()[-1], DEV_SECRET, algorithms=["HS256"])
    assert claims["email"] == "iro@example.gov.uk"
    # On stderr, so `| awk '{print $NF}'` (the README's walk-through) still gets the token alone.
    assert "development secret" in result.stderr and "demo server" in result.stderr
    assert result.stdout.count("\n") == 1


def test_token_refuses_hours_over_the_maximum(run: Invoke) -> None:
    over = run("token", "iro@example.gov.uk", "--hours", "13")
    assert over.exit_code != 0
    assert "DISPUTES_TOKEN_MAX_HOURS" in over.stderr
    assert over.stdout == ""
    assert isinstance(over.exception, SystemExit)
    raised = run("token", "iro@example.gov.uk", "--hours", "13", env={"DISPUTES_TOKEN_MAX_HOURS": "24"})
    assert raised.exit_code == 0, raised.output
    assert run("token", "iro@example.gov.uk", "--hours", "12").exit_code == 0


# --- openapi -------------------------------------------------------------------------------------------


def test_openapi_needs_no_server_settings(run: Invoke) -> None:
    # Every server setting unsafe, or half-configured: the document is only printed, never served.
    result = run(
        "openapi",
        env={
            "DISPUTES_JWT_SECRET": "short",
            "DISPUTES_JWKS_URL": "https://login.example/keys",
            "DISPUTES_PUBLIC_BASE_URL": "http://disputes.example",
            "DISPUTES_SMTP_HOST": "mail.example",
            "DISPUTES_API_DOCS": "false",
        },
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["info"]["title"] == "dispute-service"


# --- serve ---------------------------------------------------------------------------------------------


def test_serve_refuses_unsafe_settings_naming_each_and_touching_nothing(
    run: Invoke, served: list[dict[str, Any]], tmp_path: Path
) -> None:
    database = tmp_path / "fresh.db"
    result = run(
        "serve",
        env={
            "DISPUTES_DATABASE_URL": f"sqlite:///{database}",
            "DISPUTES_JWT_SECRET": DEV_SECRET,
            "DISPUTES_LINK_SECRET": "too-short",
            "DISPUTES_SMTP_HOST": "mail.example.gov.uk",
            "DISPUTES_PUBLIC_BASE_URL": "http://disputes.example.gov.uk",
        },
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for name in (
        "DISPUTES_JWT_SECRET",
        "DISPUTES_LINK_SECRET",
        "DISPUTES_AUDIT_KEY",
        "DISPUTES_SMTP_HOST",
        "DISPUTES_PUBLIC_BASE_URL",
    ):
        assert name in result.stderr
    assert result.stderr.count(MAKE_A_SECRET) == 3
    assert served == []
    assert not database.exists(), "the refusal comes before the migration"


def test_serve_without_demo_serves_the_strict_app_with_no_server_header(
    run: Invoke, served: list[dict[str, Any]]
) -> None:
    result = run("serve", "--port", "8123", "--no-migrate", env=STRICT_ENV)
    assert result.exit_code == 0, result.output
    [call] = served
    assert call["app"].state.mode is Mode.STRICT
    assert call["server_header"] is False
    assert (call["host"], call["port"]) == ("127.0.0.1", 8123)
    assert "demo" not in result.output


def test_serve_demo_needs_no_configuration(
    served: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `make run` on a fresh checkout: no DISPUTES_* at all, and no database yet.
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("DISPUTES_")]:
        monkeypatch.delenv(name)
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        result = CliRunner().invoke(app, ["serve", "--demo"])
    assert result.exit_code == 0, result.output
    assert "demo data loaded" in result.stdout
    [call] = served
    assert call["app"].state.mode is Mode.DEMO
    assert call["server_header"] is False
    assert [e for e in logs if e["event"] == "service.demo_mode" and e["log_level"] == "warning"]
    engine = create_engine(f"sqlite:///{tmp_path / 'disputes.db'}")
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Person)) > 0
    engine.dispose()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "disputes.example.gov.uk"])
def test_serve_demo_refuses_a_host_reachable_from_elsewhere(
    run: Invoke, served: list[dict[str, Any]], host: str
) -> None:
    result = run("serve", "--demo", "--host", host)
    assert result.exit_code != 0
    assert f"--host {host}" in result.stderr
    assert served == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_serve_demo_listens_on_loopback(run: Invoke, served: list[dict[str, Any]], host: str) -> None:
    result = run("serve", "--demo", "--host", host)
    assert result.exit_code == 0, result.output
    assert served[0]["host"] == host


def test_serve_demo_refuses_a_database_other_than_sqlite(run: Invoke, served: list[dict[str, Any]]) -> None:
    result = run(
        "serve", "--demo", env={"DISPUTES_DATABASE_URL": "postgresql://postgres@db.invalid/disputes"}
    )
    assert result.exit_code != 0
    assert "SQLite" in result.stderr
    assert served == []


def _dockerfile_serve_command() -> tuple[list[str], dict[str, str]]:
    """The `dispute-service serve ...` the image's CMD runs, and the ENV the image sets."""
    lines = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    [cmd] = [line for line in lines if line.startswith("CMD ")]
    argv = json.loads(cmd[len("CMD ") :])
    if argv[:2] == ["sh", "-c"]:
        commands = [shlex.split(part) for part in argv[2].split("&&")]
    else:
        commands = [argv]
    [serve] = [[word for word in c if word != "exec"] for c in commands if "serve" in c]
    env: dict[str, str] = {}
    for line in lines:
        if line.startswith("ENV "):
            for pair in shlex.split(line[len("ENV ") :]):
                name, _, value = pair.partition("=")
                env[name] = value
    return serve, env


def test_the_dockerfile_starts_strict(run: Invoke, served: list[dict[str, Any]], tmp_path: Path) -> None:
    command, image_env = _dockerfile_serve_command()
    assert command[:2] == ["dispute-service", "serve"]
    assert "--demo" not in command
    # The image sets no secret, so the container started as documented, without them, refuses to start.
    assert not {"DISPUTES_JWT_SECRET", "DISPUTES_LINK_SECRET", "DISPUTES_AUDIT_KEY"} & set(image_env)
    env = {**image_env, "DISPUTES_DATABASE_URL": f"sqlite:///{tmp_path / 'image.db'}"}
    refused = run(*command[1:], env={**env, "DISPUTES_JWT_SECRET": DEV_SECRET})
    assert refused.exit_code == 1
    assert "DISPUTES_JWT_SECRET" in refused.stderr
    assert served == []
    # Given what a real deployment sets, the same command serves the strict app.
    started = run(*command[1:], env={**env, **STRICT_ENV, "DISPUTES_PUBLIC_BASE_URL": "https://d.example"})
    assert started.exit_code == 0, started.output
    [call] = served
    assert call["app"].state.mode is Mode.STRICT
    assert call["host"] == "0.0.0.0"


# --- what serve imports ---------------------------------------------------------------------------------

# `dispute-service serve --no-migrate` as the console script runs it, in a fresh interpreter, up to its
# first answer: uvicorn.run is replaced by the steps uvicorn takes before it listens (its config loads the
# protocols it was asked for), then the app's lifespan (engine, scheduler) and one GET /readyz through the
# app as uvicorn wraps it. The modules loaded by then, and the garbage collector's state as the server would
# take requests, are written to the file named by the first argument.
_SERVE_ONCE = """
import asyncio, gc, json, sys
import uvicorn

RESULT = sys.argv[1]

def serve_once(application, **options):
    collector = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
    config = uvicorn.Config(application, **options)
    config.load()
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    async def main():
        async with application.router.lifespan_context(application):
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                "scheme": "http", "path": "/readyz", "raw_path": b"/readyz", "query_string": b"",
                "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8000),
            }
            await config.loaded_app(scope, receive, send)

    asyncio.run(main())
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    with open(RESULT, "w") as out:
        json.dump({"status": status, "modules": sorted(sys.modules), "collector": collector}, out)

uvicorn.run = serve_once
sys.argv = ["dispute-service", "serve", "--no-migrate"]
from api.console import main
main()
"""

# Each is imported on first use instead (issue 11: ready within a second of launch on a 2-core machine).
NOT_AT_START = {
    "alembic": "only a migration needs it, and `serve --no-migrate` runs none",
    "jwt": "PyJWT, with the cryptography package, is imported by the first token checked",
    "cryptography": "PyJWT's, for RS256; imported with PyJWT by the first token checked",
    "holidays": "the calendar imports it at the first date it looks up",
    "jinja2": "only email links' pages, emails and the report's chart render templates",
    "websockets": "the API has no WebSocket route: serve starts uvicorn with ws='none'",
    "wsproto": "the API has no WebSocket route: serve starts uvicorn with ws='none'",
    "dispute_service.report.annual": "the annual report is imported by its first request",
    "matplotlib": "the chart is a Jinja2 template",
    "numpy": "nothing needs it",
}


def test_serve_imports_nothing_its_start_and_readiness_do_not_need_and_collects_garbage(
    sqlite_template: Path, tmp_path: Path
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "disputes.db")
    env = {name: value for name, value in os.environ.items() if not name.startswith("DISPUTES_")}
    env.update(STRICT_ENV, DISPUTES_DATABASE_URL=f"sqlite:///{tmp_path / 'disputes.db'}")
    result_file = tmp_path / "modules.json"
    ran = subprocess.run(
        [sys.executable, "-c", _SERVE_ONCE, str(result_file)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(result_file.read_text())
    assert result["status"] == 200
    loaded = set(result["modules"])
    # Sanity: the start did import what it needs, so an empty list below means something.
    assert {"fastapi", "sqlalchemy", "uvicorn", "api.app", "api.routes.reports", "apscheduler"} <= loaded
    imported = {name: why for name, why in NOT_AT_START.items() if name in loaded}
    assert imported == {}, "imported at start-up, though the start and /readyz need none of them"
    # The console script pauses the cyclic collector for the start; a server left without it would never
    # free a reference cycle. What the start made is frozen out of later collections instead.
    assert result["collector"]["enabled"] is True
    assert result["collector"]["frozen"] > 50_000
