"""Rendering pages: one Jinja2 environment (ours and GOV.UK Frontend's macros) and the headers every page
carries."""

from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse

from dispute_service.access import READ_ALL_ROLES, REPORT_READER_ROLES, Actor
from dispute_service.config import Settings

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).parent.parent / "templates"
SERVICE_NAME = "IRO dispute resolution"

# The paths that are not pages: they answer JSON (problem+json when refused), never HTML.
_NOT_PAGES = ("/api/", "/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json")


def is_page(path: str) -> bool:
    return not path.startswith(_NOT_PAGES)


@functools.cache
def environment() -> Environment:
    # Imported by the first page, not at start-up: an API-only server renders none.
    from jinja2 import (
        ChoiceLoader,
        Environment,
        FileSystemLoader,
        PackageLoader,
        PrefixLoader,
        select_autoescape,
    )

    env = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(TEMPLATES),
                PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
            ]
        ),
        autoescape=select_autoescape(["html"]),
        # The GOV.UK macros are written for these.
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["service_name"] = SERVICE_NAME
    return env


def security_headers(nonce: str, *, private: bool, form_targets: tuple[str, ...] = ()) -> dict[str, str]:
    """A page's own headers: its content security policy and whether a cache may keep it (`private`: it
    shows dispute or personal data). The rest of SPEC section 9's headers (nosniff, frame and referrer
    policy, HSTS) `api.web.headers.PageHeaders` gives every answer on a page's path, pages or not.
    `form_targets`: origins besides this service's that a form on the page may end up at."""
    form_action = " ".join(("'self'", *form_targets))
    csp = (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"object-src 'none'; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
    )
    return {"Content-Security-Policy": csp, "Cache-Control": "no-store" if private else "no-cache"}


def on_https(request: Request) -> bool:
    """Whether the service is reached over https, by its public address (a proxy ends TLS in front)."""
    settings: Settings = request.app.state.settings
    return urlsplit(settings.public_base_url).scheme == "https"


# The menu: (path, words, key, who sees it: any of these roles, or everyone signed in).
_MENU = (
    ("/", "Your disputes", "home", None),
    ("/disputes/new", "Raise a dispute", "raise", frozenset({"iro"})),
    ("/disputes", "All open disputes", "all", READ_ALL_ROLES),
    ("/reports/annual", "Annual report", "report", frozenset(REPORT_READER_ROLES)),
    ("/people", "People", "people", frozenset({"admin"})),
    ("/organisations", "Organisations", "organisations", frozenset({"admin"})),
)


def menu_for(viewer: Actor | None, current: str | None) -> list[dict[str, Any]]:
    if viewer is None:
        return []
    return [
        {"href": href, "text": text, "active": key == current}
        for href, text, key, roles in _MENU
        if roles is None or roles & viewer.roles
    ]


def render(
    request: Request,
    template: str,
    status: int = 200,
    *,
    private: bool = True,
    headers: dict[str, str] | None = None,
    form_targets: tuple[str, ...] = (),
    **context: Any,
) -> HTMLResponse:
    """A page, with its security headers. `request.state.viewer` (when signed in) is in the context."""
    nonce = secrets.token_urlsafe(16)
    viewer = getattr(request.state, "viewer", None)
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            viewer=viewer,
            menu=menu_for(viewer, context.get("nav")),
            csp_nonce=nonce,
            csrf_token=getattr(request.state, "csrf_token", None),
            demo=request.app.state.mode.value == "demo",
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    response.headers.update(security_headers(nonce, private=private, form_targets=form_targets))
    if headers:
        response.headers.update(headers)
    return response
