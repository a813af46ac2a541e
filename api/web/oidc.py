"""Signing in to the pages by OpenID Connect (SPEC section 9): the authorisation-code flow with PKCE
against the council's identity provider (Microsoft Entra ID in production, any conforming provider).

`POST /sign-in` sends the browser to the provider with a fresh state, nonce and PKCE verifier, which wait
for its return in a short-lived signed cookie; `GET /auth/callback` checks the state against that cookie,
exchanges the code (with the verifier and the client secret) for an ID token, and verifies the token before
anyone is signed in. The provider's discovery document and keys are cached. Tokens, codes and ID tokens are
never logged: they are, or lead to, someone's sign-in.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass

import structlog
from fastapi import Request
from fastapi.responses import Response

from api.web.render import on_https
from api.web.signin import _unsigned, signed
from dispute_service.config import Settings

log = structlog.get_logger("api.web.oidc")

CALLBACK_PATH = "/auth/callback"
SCOPES = "openid email profile"
PENDING_COOKIE = "dispute_sign_in"
# Long enough to type a password and approve a prompt; short enough that a forgotten tab's state is useless.
PENDING_SECONDS = 10 * 60
# The pending cookie holds a next path of up to 300 characters beside its random values, base64-encoded.
_PENDING_LONGEST = 1024
# Every call to the provider gives up after this, so a provider that hangs cannot hold a request for ever.
HTTP_TIMEOUT = 10.0
# Discovery and keys are re-read this often, so a provider's new endpoints or rotated keys are picked up
# without a restart; a token signed by a key not yet seen re-reads the keys at once, but at most once in
# `_KEYS_REREAD_GAP`, so tokens with made-up key ids cannot make this service hammer the provider.
_CACHE_SECONDS = 60 * 60
_KEYS_REREAD_GAP = 60
# Clock skew allowed between this machine and the provider's.
LEEWAY = 120
# Asymmetric only: "none" must never pass, and an HS256 token would be signed with the client secret, which
# this service holds too, so it would prove nothing about the provider.
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


class SignInFailed(Exception):
    """The sign-in cannot go on. `reason` is for the log, `message` for the person, in the service's own
    words (never what the provider or the request said)."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.status = status


START_AGAIN = "Your sign-in could not be completed. Start again from this page."
UNREACHABLE = "Your council's sign-in service could not be reached. Try again in a few minutes."


def _unreachable(reason: str) -> SignInFailed:
    return SignInFailed(reason, UNREACHABLE, 502)


@dataclass(frozen=True)
class Pending:
    """A sign-in begun and not yet returned from the provider."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str
    issued_at: int

    @classmethod
    def new(cls, next_path: str, now: int) -> Pending:
        # 256 bits each; the verifier is 43 characters, the shortest PKCE allows (RFC 7636, 4.1).
        return cls(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(32), next_path, now
        )

    def encode(self) -> str:
        data = [self.state, self.nonce, self.code_verifier, self.next_path, self.issued_at]
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()

    @classmethod
    def decode(cls, value: str) -> Pending | None:
        try:
            data = json.loads(base64.urlsafe_b64decode(value.encode()))
        except (binascii.Error, ValueError):
            return None
        if (
            not isinstance(data, list)
            or len(data) != 5
            or not all(isinstance(item, str) for item in data[:4])
            or not isinstance(data[4], int)
        ):
            return None
        return cls(*data)


def set_pending_cookie(request: Request, response: Response, pending: Pending) -> None:
    settings: Settings = request.app.state.settings
    response.set_cookie(
        PENDING_COOKIE,
        signed(settings.session_secret, "sign-in", pending.encode()),
        max_age=PENDING_SECONDS,
        # Only the callback needs it.
        path=CALLBACK_PATH,
        httponly=True,
        # Lax, not Strict: the provider's redirect back is a top-level navigation from another site, and
        # Lax still sends the cookie with it.
        samesite="lax",
        secure=on_https(request),
    )


def clear_pending_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        PENDING_COOKIE, path=CALLBACK_PATH, httponly=True, samesite="lax", secure=on_https(request)
    )


def pending_sign_in(request: Request, now: int) -> Pending | None:
    """The sign-in this browser began here, unless its cookie is missing, not signed here, or too old (the
    cookie's own max-age is the browser's to honour; this is ours)."""
    value = _unsigned(request, "sign-in", request.cookies.get(PENDING_COOKIE), longest=_PENDING_LONGEST)
    pending = Pending.decode(value) if value is not None else None
    if pending is None or not 0 <= now - pending.issued_at <= PENDING_SECONDS:
        return None
    return pending


def redirect_uri(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH
