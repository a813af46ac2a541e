"""`dispute-service`: the core's commands, plus those that need the API.

The core's typer app lives in `dispute_service.cli` and must not refer to the API, so the commands that
serve it or mint its tokens are added here; the `dispute-service` console script (`api.console`) runs this
module's app.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from dispute_service.cli import _sessions, app
from dispute_service.clock import utc_now
from dispute_service.config import DEV_SECRET, Settings, UnsafeSettings, is_loopback

__all__ = ["app"]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Load a demo staff directory and disputes, and accept the development secrets "
            "(this machine and SQLite only)",
        ),
    ] = False,
    run_migrations: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Migrate first")] = True,
) -> None:
    """Serve the API and run the scheduler. Without --demo, refuse to start on unsafe settings."""
    import structlog
    import uvicorn

    from dispute_service.database import is_sqlite, normalise_url, upgrade
    from dispute_service.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_format)
    if demo:
        # Demo mode accepts the published development secrets, so it must never be reachable from elsewhere
        # nor hold a real database.
        refused = []
        if not is_loopback(host):
            refused.append(f"--demo listens on this machine only; --host {host} is not a loopback address")
        if not is_sqlite(normalise_url(settings.database_url)):
            refused.append("--demo runs on SQLite only; DISPUTES_DATABASE_URL names another database")
        if refused:
            for line in refused:
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(2)
    # Imported here, after logging is configured; the other commands then start without loading FastAPI.
    from api.app import Mode, create_app

    try:
        # Built before anything else, so unsafe settings stop the start before the database is touched.
        application = create_app(settings, mode=Mode.DEMO if demo else Mode.STRICT)
    except UnsafeSettings as exc:
        typer.echo("refusing to start: these settings are unsafe for a real service", err=True)
        for problem in exc.problems:
            typer.echo(f"- {problem}", err=True)
        typer.echo("(`serve --demo` runs on this machine with development settings)", err=True)
        raise typer.Exit(1) from None
    settings.loaded_policy  # noqa: B018 - fail now, naming the key, if the policy file is bad
    if not gc.isenabled():
        # Paused by the console script for the start's imports (api.console): what they made lives as long
        # as the process, so it is frozen out of every later collection, and collection resumes before the
        # migration and the first request.
        gc.freeze()
        gc.enable()
    if run_migrations:
        upgrade(settings.database_url)
    if demo:
        structlog.get_logger("api").warning(
            "service.demo_mode",
            detail="development secrets are accepted and demo data is loaded; never use for real cases",
        )
        from dispute_service.demo import load_demo

        loaded = load_demo(
            _sessions(settings), settings.loaded_policy, utc_now(), audit_key=settings.audit_key
        )
        typer.echo("demo data loaded" if loaded else "demo data already present")
    # No `server` header: it would tell a scanner which server and version to try. No WebSocket protocol:
    # the API has no WebSocket route, and uvicorn would import the websockets package at start for one.
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        ws="none",
    )


@app.command()
def token(email: str, hours: Annotated[int, typer.Option(help="Hours the token is valid")] = 12) -> None:
    """Print a token (HS256) for EMAIL, signed with DISPUTES_JWT_SECRET or else the development secret; the
    token is the last word of the output."""
    from api.auth import development_token

    settings = Settings()
    if hours > settings.token_max_hours:
        typer.echo(
            f"error: --hours {hours} is over the {settings.token_max_hours:g} hours the service accepts "
            "(DISPUTES_TOKEN_MAX_HOURS)",
            err=True,
        )
        raise typer.Exit(2)
    # Notes go to stderr, so `| awk '{print $NF}'` still picks the token from stdout.
    if settings.jwt_secret == DEV_SECRET:
        typer.echo(
            "note: DISPUTES_JWT_SECRET is not set, so this token is signed with the development secret; "
            "only a demo server (serve --demo) accepts it",
            err=True,
        )
    if settings.jwks_url:
        typer.echo(
            "note: DISPUTES_JWKS_URL is set, so the server accepts only the identity provider's tokens, "
            "not this one",
            err=True,
        )
    typer.echo(f"token for {email.lower()}: {development_token(settings, email, utc_now(), hours)}")


def openapi_document() -> str:
    """The OpenAPI document as committed in docs/openapi.json: JSON, indent 2, sorted keys, final newline.

    Sorted keys keep the diff of a schema change to the lines that changed.
    """
    import json

    from api.app import Mode, create_app

    # Only the lifespan connects to the database; building the document never starts it. Nothing is served,
    # so the document needs no secret (and is the same in either mode): the demo mode skips their check.
    return json.dumps(create_app(Settings(), mode=Mode.DEMO).openapi(), indent=2, sort_keys=True) + "\n"


@app.command()
def openapi(
    output: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write the document here instead of to stdout")
    ] = None,
) -> None:
    """Print the OpenAPI document (JSON), as the API serves it at /openapi.json."""
    document = openapi_document()
    if output is None:
        typer.echo(document, nl=False)
    else:
        output.write_text(document, encoding="utf-8")
