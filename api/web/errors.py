"""Error pages: the same refusals the API gives as problem+json (`api/errors.py` maps them), as pages."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.web.render import render
from api.web.signin import CsrfRefused, SignInRequired

# What a person can do about each refusal.
_ADVICE = {
    403: "You do not have permission to do this. If you think you should, ask your service's administrator.",
    404: "If you typed the address, check it is correct. If you followed a link, the page may have been "
    "removed, or it may not be yours to see.",
    409: "Someone or something changed this while you were looking at it. Go back and reload the page.",
    410: "This link has expired.",
    413: "What you sent is too large. Shorten the text and try again.",
    422: "Some of what you sent could not be used. Go back and check it.",
    429: "There have been too many attempts in a short time. Wait a little and try again.",
    500: "Sorry, there is a problem with the service. Try again later. Nothing you sent was saved.",
}
_TITLES = {
    403: "You cannot do this",
    404: "Page not found",
    409: "This cannot be done now",
    410: "Link expired",
    413: "Too much was sent",
    422: "There is a problem with what you sent",
    429: "Too many attempts",
    500: "Sorry, there is a problem with the service",
}


def error_page(
    request: Request, status: int, message: str | None = None, title: str | None = None
) -> HTMLResponse:
    """The page for a refusal. `message` is the service's own words about it, never the request echoed."""
    status = status if status in _TITLES else (500 if status >= 500 else 422)
    return render(
        request,
        "web/error.html",
        status,
        title=title or _TITLES[status],
        message=message,
        advice=_ADVICE[status],
    )


def sign_in_required(request: Request, exc: SignInRequired) -> Response:
    query = urlencode({"next": exc.next_path}) if exc.next_path not in ("", "/") else ""
    return RedirectResponse("/sign-in" + (f"?{query}" if query else ""), status_code=303)


def csrf_refused(request: Request, _: CsrfRefused) -> HTMLResponse:
    return error_page(
        request,
        403,
        "The form could not be checked: it was sent without its security token, or from an old page. "
        "Go back, reload the page and try again.",
        title="The form has expired",
    )
