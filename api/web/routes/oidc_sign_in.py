"""Signing in with the council's identity provider (`api/web/oidc.py`): off to the provider, and back."""

from __future__ import annotations

import hmac
import re
import time
from typing import TYPE_CHECKING, Annotated

import anyio
import structlog
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import NowDep, TransactionDep
from api.web.oidc import (
    START_AGAIN,
    Pending,
    SignInFailed,
    clear_pending_cookie,
    pending_sign_in,
    set_pending_cookie,
)
from api.web.routes.account import begin_session, demo_people_afresh, sign_in_page, signed_in
from api.web.signin import check_form_token, count_sign_in, session_token
from dispute_service.errors import Unauthenticated

log = structlog.get_logger("api.web.sign_in")

if TYPE_CHECKING:
    from api.web.oidc_client import OpenIdProvider

router = APIRouter(include_in_schema=False)

# What the provider may send back, capped: nothing longer is needed, and nothing longer is read. Entra ID's
# codes run to about 1,500 characters.
Code = Annotated[str | None, Query(max_length=4096)]
State = Annotated[str | None, Query(max_length=200)]
ProviderError = Annotated[str | None, Query(alias="error", max_length=200)]
ProviderErrorDescription = Annotated[str | None, Query(alias="error_description", max_length=2000)]
Issuer = Annotated[str | None, Query(alias="iss", max_length=500)]


def _provider(request: Request) -> OpenIdProvider | None:
    provider: OpenIdProvider | None = request.app.state.oidc
    return provider


async def _refused(request: Request, failure: SignInFailed, next_path: str = "/") -> Response:
    log.info("sign_in.refused", reason=failure.reason)
    people = await demo_people_afresh(request)
    response = sign_in_page(request, people, next_path, failure.status, failure.message)
    clear_pending_cookie(request, response)
    return response


@router.post("/sign-in")
async def begin_sign_in(
    request: Request, now: NowDep, next_path: Annotated[str, Form(alias="next", max_length=300)] = "/"
) -> Response:
    provider = _provider(request)
    if provider is None:
        return Response(status_code=404)
    await check_form_token(request)
    # Each begins a round trip to the provider (its discovery, at first): a client may make only so many.
    count_sign_in(request, now.timestamp())
    try:
        url, pending = await anyio.to_thread.run_sync(provider.start, next_path)
    except SignInFailed as failure:
        return await _refused(request, failure, next_path)
    response = RedirectResponse(url, status_code=303)
    set_pending_cookie(request, response, pending)
    return response


@router.get("/auth/callback")
async def finish_sign_in(
    request: Request,
    tx: TransactionDep,
    now: NowDep,
    code: Code = None,
    state: State = None,
    error: ProviderError = None,
    error_description: ProviderErrorDescription = None,
    iss: Issuer = None,
) -> Response:
    provider = _provider(request)
    if provider is None:
        return Response(status_code=404)
    # Every return counts, good or bad: each may cost a call to the provider's token endpoint.
    count_sign_in(request, now.timestamp())
    # Wall-clock time, as the cookie's max-age is.
    pending = pending_sign_in(request, int(time.time()))
    next_path = pending.next_path if pending else "/"
    try:
        email = await _email_from_callback(provider, pending, code, state, error, error_description, iss)
    except SignInFailed as failure:
        return await _refused(request, failure, next_path)
    try:
        token, _ = await tx.finish(begin_session, session_token(request), email, now)
    except Unauthenticated:
        return await _refused(
            request,
            SignInFailed("not_in_directory", "That person is not active in the staff directory.", 403),
            next_path,
        )
    response = signed_in(request, token, next_path)
    clear_pending_cookie(request, response)
    return response


async def _email_from_callback(
    provider: OpenIdProvider,
    pending: Pending | None,
    code: str | None,
    state: str | None,
    error: str | None,
    error_description: str | None,
    iss: str | None,
) -> str:
    if error is not None:
        # Only an error code of RFC 6749's form is logged, and never the description: both come from the
        # query string, which anyone can write, and a provider's description may name the person.
        code_logged = error if re.fullmatch(r"[a-z_]{1,40}", error) else "other"
        log.warning("sign_in.provider_error", error=code_logged)
        if error == "access_denied":
            raise SignInFailed(
                "provider_access_denied",
                "You were not signed in: the sign-in was cancelled, or your council account may not use this "
                "service. Try again, or ask your service's administrator.",
                403,
            )
        raise SignInFailed(
            "provider_error", "Your council's sign-in service could not sign you in. " + START_AGAIN
        )
    if pending is None:
        # No cookie: it expired, this browser did not begin the sign-in, or cookies are blocked.
        raise SignInFailed(
            "no_pending_sign_in",
            "Your sign-in took too long, or was started in another browser. Start again from this page.",
        )
    # Someone else's callback address (login CSRF), or one from an older sign-in in another tab.
    if state is None or not hmac.compare_digest(state.encode(), pending.state.encode()):
        raise SignInFailed("state_mismatch", START_AGAIN)
    # RFC 9207: a provider that names itself must be ours (a defence against mixing up providers).
    if iss is not None and iss.rstrip("/") != provider.issuer:
        raise SignInFailed("issuer_mismatch", START_AGAIN)
    if not code:
        raise SignInFailed("no_code", START_AGAIN)
    return await anyio.to_thread.run_sync(provider.finish, code, pending)
