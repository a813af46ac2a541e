"""The FastAPI app factory. Nothing connects at import time: the lifespan builds and disposes every part."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from api.auth import TokenVerifier
from api.errors import add_exception_handlers, document_problem_schema
from api.limits import install as install_limits
from api.request_id import RequestId
from api.routes import disputes, health, link_reading, links, notifications, partners, people, reports
from api.scheduler import EscalationScheduler
from api.web import install as install_pages
from api.workers import Workers
from dispute_service import audit
from dispute_service.clock import Clock, utc_now
from dispute_service.config import Settings, UnsafeSettings, unsafe_settings
from dispute_service.database import READ_ONLY, Sessions, make_engine, make_session_factory
from dispute_service.metrics import Metrics
from notifications.dispatcher import dispatch
from notifications.smtp import SmtpSender

log = structlog.get_logger("api")


class Mode(enum.Enum):
    """How the app treats its settings. There is no default: every caller says which it means, so no
    forgotten environment switch can leave a real deployment lax."""

    # Refuses to be built with a development secret, a short key, plain-text mail or http links.
    STRICT = "strict"
    # `serve --demo` on this machine only (and tests that need lax settings): development secrets accepted.
    DEMO = "demo"


def _log_checkpoint(sessions: Sessions, clock: Clock) -> None:
    """The global audit chain's head, for the log pipeline to carry off the database's host: `audit verify
    --checkpoint` later shows whether the database still extends it."""
    try:
        # Read only, and rolled back as the session closes, so a checkpoint never shows up as a commit.
        with sessions() as session:
            session.connection(execution_options={READ_ONLY: True})
            point = audit.checkpoint(session, clock())
    except Exception:
        log.exception("audit.checkpoint_failed")
        return
    log.info("audit.checkpoint", **point.fields())


async def _log_checkpoints(sessions: Sessions, clock: Clock, settings: Settings) -> None:
    # Independent of the scheduler, so a replica with the scheduler off still leaves checkpoints.
    while True:
        await asyncio.sleep(settings.checkpoint_minutes * 60)
        await asyncio.to_thread(_log_checkpoint, sessions, clock)


def create_app(settings: Settings, *, mode: Mode, clock: Clock = utc_now) -> FastAPI:
    """Build the app; in STRICT mode, raise `UnsafeSettings` naming every unsafe setting, before anything
    connects."""
    if mode is Mode.STRICT:
        problems = unsafe_settings(settings)
        if problems:
            raise UnsafeSettings(problems)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Validated at start-up, so a bad policy file stops the service with the key at fault.
        app.state.policy = settings.loaded_policy
        engine = make_engine(
            settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
        app.state.engine = engine
        app.state.sessions = make_session_factory(
            engine, audit_key=settings.audit_key, audit_keyring=settings.retired_audit_keys()
        )
        app.state.workers = Workers(settings.db_pool_size + settings.db_max_overflow)
        app.state.metrics = Metrics(app.state.sessions, clock)
        app.state.scheduler = None
        if settings.scheduler_enabled:
            sender = SmtpSender(settings)
            sessions, policy = app.state.sessions, app.state.policy

            def send_queued() -> None:
                # One SMTP connection for the whole run, not one per email.
                with sender.connection() as send:
                    dispatch(sessions, policy, settings, send, clock)

            app.state.scheduler = EscalationScheduler(
                sessions,
                policy,
                clock,
                app.state.metrics,
                settings.scheduler_interval_seconds,
                dispatcher=send_queued,
                dispatch_interval=settings.dispatch_interval_seconds,
            )
            app.state.scheduler.start()
        checkpoints = asyncio.create_task(_log_checkpoints(app.state.sessions, clock, settings))
        log.info(
            "service.started",
            mode=mode.value,
            database=engine.dialect.name,
            scheduler=settings.scheduler_enabled,
        )
        try:
            yield
        finally:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
            await asyncio.to_thread(_log_checkpoint, app.state.sessions, clock)
            if app.state.scheduler is not None:
                app.state.scheduler.shutdown()
            app.state.workers.shutdown()
            engine.dispose()
            log.info("service.stopped")

    # With the docs off, the routes are not mounted at all, so /docs, /redoc and /openapi.json answer 404.
    docs = settings.api_docs
    app = FastAPI(
        title="dispute-service",
        version="0.1.0",
        description="Runs a local authority's IRO dispute resolution procedure. See the README.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.mode = mode
    app.state.clock = clock
    app.state.verifier = TokenVerifier(settings)
    add_exception_handlers(app)
    document_problem_schema(app)
    install_limits(app, settings)

    # Outermost, so every answer (a 413 from the body cap included) carries the id and logs with it.
    app.add_middleware(RequestId)

    app.include_router(disputes.router)
    app.include_router(people.router)
    app.include_router(partners.organisations)
    app.include_router(partners.contacts)
    app.include_router(reports.router)
    app.include_router(notifications.router)
    app.include_router(health.router)
    # Before the link pages: /links/renew is a page of its own, not a token.
    app.include_router(link_reading.router)
    app.include_router(links.router)
    install_pages(app, settings)
    return app
