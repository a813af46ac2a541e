"""The pages for people (SPEC section 9): GOV.UK Frontend, server-rendered, signed in by session cookie."""

from __future__ import annotations

from pathlib import Path

import structlog
from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from api.web.routes import account, disputes, home, people, raise_dispute, report
from dispute_service.config import Settings

log = structlog.get_logger("api.web")

STATIC = Path(__file__).parent.parent / "static"
NODE_ASSETS = Path(__file__).parent.parent.parent / "node_modules" / "govuk-frontend" / "dist" / "govuk"


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the pages, their static files and their error pages on `app`."""
    govuk = settings.assets_dir or NODE_ASSETS
    if (govuk / "govuk-frontend.min.css").is_file():
        app.mount("/assets", StaticFiles(directory=govuk / "assets"), name="govuk-assets")
        app.mount("/static/govuk", StaticFiles(directory=govuk), name="govuk")
    else:
        # The pages still work, unstyled; `make run` runs `npm ci` first, the image builds them in.
        log.warning("pages.assets_missing", looked_in=str(govuk), fix="run `npm ci` (or `make run`)")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # /disputes/new before /disputes/{id}, which would take "new" for an id.
    for module in (account, home, raise_dispute, disputes, report, people):
        app.include_router(module.router)
