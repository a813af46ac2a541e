"""Reading a dispute by its email link, and asking for a fresh link (SPEC 10, "Reading by link").

The link's page offers a code (POST /links/{token}/code), sent to the link's person in an email of its own;
the right code (POST /links/{token}/read) opens a link session, and the link's page then shows the dispute's
summary and the IRO's latest reason for 30 minutes. Acting through the link never needs any of this.

/links/renew answers the same page, with the same status, whatever address is entered: whether an address
is known is nobody's business but its owner's, who learns it from their inbox. It takes as long, too: the
page only records the address, and the dispatcher looks it up. Both are rate-limited per address and per
client, since each request may send an email.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import NowDep, PolicyDep, SessionsDep, SettingsDep, wake_dispatch
from api.ratelimit import LinkReadingLimits
from api.routes.links import Token, _page, _refusal, _too_many
from api.web.link_session import set_link_session_cookie
from api.web.signin import issue_form_token, set_form_cookie, verify_form_token
from dispute_service.errors import DomainError, LinkCodeWrong
from dispute_service.outbox import QUEUED_EMAIL
from notifications import link_reading, links

router = APIRouter(tags=["email links"])

MAX_EMAIL = 320


class _Throttled(Exception):
    def __init__(self, wait: int) -> None:
        self.wait = wait


def _limits(request: Request) -> tuple[LinkReadingLimits, str]:
    limits: LinkReadingLimits = request.app.state.link_reading_limits
    return limits, request.client.host if request.client else "unknown"


def _pages(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        200: "The page",
        303: "Done: see the link's page",
        403: "The form's security token is missing or wrong, or the link is no longer its person's",
        404: "Unknown or tampered link",
        409: "The link is used, locked after too many wrong codes, or the dispute has moved on",
        410: "The link, or the code, has expired",
        422: "The form again, with the error",
        429: "Too many requests from this client or for this address: try again after Retry-After seconds",
    }
    return {s: {"description": descriptions[s], "content": {"text/html": {}}} for s in statuses}


@router.post(
    "/links/{token}/code",
    response_class=HTMLResponse,
    responses=_pages(200, 403, 404, 409, 410, 422, 429),
    summary="Send a one-time code for reading the dispute to the link's person",
)
def send_code(
    request: Request,
    token: Token,
    sessions: SessionsDep,
    policy: PolicyDep,
    settings: SettingsDep,
    now: NowDep,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    limits, client = _limits(request)
    wait = limits.per_client.use(client, now.timestamp())
    if wait is not None:
        return _too_many(request, wait)
    try:
        with sessions.begin() as session:
            view = links.inspect(session, policy, settings.link_secret, token, now)
            verify_form_token(request, csrf_token)
            # Counted once the request is known to be a real one: each sends an email to the address.
            wait = limits.codes_per_address.use(view.person_email, now.timestamp())
            if wait is not None:
                raise _Throttled(wait)
            link_reading.send_code(session, settings.link_secret, token, now)
            queued_email = session.info.pop(QUEUED_EMAIL, False)
    except _Throttled as exc:
        return _too_many(request, exc.wait)
    except DomainError as exc:
        return _refusal(request, exc)
    if queued_email:
        wake_dispatch(request)
    return _code_form(request, token)


def _code_form(request: Request, token: str, error: str | None = None) -> HTMLResponse:
    issue_form_token(request)
    page = _page(request, "link_code.html", 422 if error else 200, token=token, error=error)
    set_form_cookie(request, page)
    return page


@router.post(
    "/links/{token}/read",
    response_class=HTMLResponse,
    status_code=303,
    responses=_pages(303, 403, 404, 409, 410, 422, 429),
    summary="Enter the one-time code: the link's page then shows the dispute's texts for 30 minutes",
)
def enter_code(
    request: Request,
    token: Token,
    sessions: SessionsDep,
    settings: SettingsDep,
    now: NowDep,
    code: Annotated[str, Form(max_length=32)] = "",
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    limits, client = _limits(request)
    wait = limits.per_client.use(client, now.timestamp())
    if wait is not None:
        return _too_many(request, wait)
    digits = code.strip().replace(" ", "")
    if len(digits) != link_reading.CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        # A typing slip costs no try: only a well-formed code is checked against the one sent.
        verify_form_token(request, csrf_token)
        return _code_form(request, token, "Enter the 6 digits of the code from the email")
    try:
        with sessions.begin() as session:
            verify_form_token(request, csrf_token)
            result = link_reading.enter_code(session, settings.link_secret, token, digits, now)
    except DomainError as exc:
        return _refusal(request, exc)
    if isinstance(result.refusal, LinkCodeWrong):
        return _code_form(request, token, str(result.refusal))
    if result.refusal is not None:
        return _refusal(request, result.refusal)
    assert result.session_token is not None
    done = RedirectResponse(f"/links/{token}#dispute-texts", status_code=303)
    set_link_session_cookie(request, done, settings.link_secret, result.session_token)
    return done


@router.get(
    "/links/renew",
    response_class=HTMLResponse,
    responses=_pages(200),
    summary="Ask for a fresh link in place of an expired one",
)
def renew_form(request: Request) -> Response:
    return _renew_form(request, "", None)


def _renew_form(request: Request, value: str, error: str | None) -> HTMLResponse:
    issue_form_token(request)
    page = _page(request, "link_renew.html", 422 if error else 200, value=value, error=error)
    set_form_cookie(request, page)
    return page


@router.post(
    "/links/renew",
    response_class=HTMLResponse,
    responses=_pages(200, 403, 422, 429),
    summary="Send fresh links for expired ones; the answer is the same whether the address is known or not",
)
def renew(
    request: Request,
    sessions: SessionsDep,
    now: NowDep,
    email: Annotated[str, Form(max_length=MAX_EMAIL)] = "",
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    limits, client = _limits(request)
    wait = limits.per_client.use(client, now.timestamp())
    if wait is not None:
        return _too_many(request, wait)
    verify_form_token(request, csrf_token)
    address = email.strip().lower()
    local, at, domain = address.partition("@")
    if not (local and at and domain) or "\x00" in address:
        error = "Enter an email address, like name@example.org"
        return _renew_form(request, email.replace("\x00", ""), error)
    # Counted for every address, known or not, so that the limit itself tells nothing.
    wait = limits.renewals_per_address.use(address, now.timestamp())
    if wait is not None:
        return _too_many(request, wait)
    # The same work for any address: one row, looked up by the dispatcher, which this wakes.
    with sessions.begin() as session:
        link_reading.request_renewal(session, address, now)
    wake_dispatch(request)
    return _page(request, "link_renew_sent.html")
