"""The pages for people (SPEC section 9): GOV.UK Frontend, server-rendered, signed in by session cookie."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import structlog
from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from api.web.headers import PageHeaders
from api.web.routes import (
    account,
    disputes,
    home,
    oidc_sign_in,
    organisations,
    people,
    raise_dispute,
    report,
)
from dispute_service.config import Settings, sign_in_configured

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
    app.add_middleware(PageHeaders, https=urlsplit(settings.public_base_url).scheme == "https")
    # Nothing is fetched yet: the provider's discovery document is read at the first sign-in.
    app.state.oidc = None
    if sign_in_configured(settings):
        # Imported only here: a server without sign-in never loads Authlib and its cryptography.
        from api.web.oidc_client import OpenIdProvider

        app.state.oidc = OpenIdProvider(settings)
    # /disputes/new before /disputes/{id}, which would take "new" for an id.
    for module in (account, oidc_sign_in, home, raise_dispute, disputes, report, people, organisations):
        app.include_router(module.router)
