"""Bearer tokens: HS256 with a shared secret, or RS256 from an identity provider's JWKS.

The token only says who the caller is; the staff directory decides what they may do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jwt
from jwt.types import Options

from dispute_service.config import Settings, jwks_problems
from dispute_service.errors import Unauthenticated


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # A strict start refuses these; in demo mode every token is refused instead, as an identity
        # provider's keys with no issuer and audience to pin would let in tokens it issued to anyone else.
        self._misconfigured = jwks_problems(settings)
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None

    def email_from(self, authorization: str | None) -> str:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthenticated("send Authorization: Bearer <token>")
        token = authorization[7:].strip()
        claims = self._decode(token)
        email = claims.get(self._settings.jwt_email_claim)
        if not isinstance(email, str) or "@" not in email:
            raise Unauthenticated(f"the token has no {self._settings.jwt_email_claim} claim holding an email")
        return email.strip().lower()

    def _decode(self, token: str) -> dict[str, Any]:
        s = self._settings
        if self._misconfigured:
            raise Unauthenticated("the service cannot check tokens: " + "; ".join(self._misconfigured))
        # Without `iat` a token's lifetime cannot be told, so both ends are required.
        required = ["exp", "iat"]
        try:
            if self._jwks is not None:
                # RS256 only: with a JWKS configured, the shared secret signs nothing the service accepts.
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = ["RS256"]
                required += ["iss", "aud"]
            else:
                key, algorithms = s.jwt_secret, ["HS256"]
            options: Options = {"require": required, "verify_aud": s.jwt_audience is not None}
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                options=options,
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the token is not valid: {exc}") from None
        # A stolen long-lived token is a standing key; PyJWT has checked both are integers, and that `iat`
        # is not in the future, so `exp` is at most the maximum from now.
        if int(claims["exp"]) - int(claims["iat"]) > s.token_max_hours * 3600:
            raise Unauthenticated(f"the token lives longer than the {s.token_max_hours:g} hours allowed")
        return claims


def development_token(settings: Settings, email: str, now: datetime, hours: int = 12) -> str:
    """An HS256 token for local use and tests (`dispute-service token EMAIL`, the README walk-through).

    It is signed exactly as `TokenVerifier` checks it, so it lives beside the verifier.
    """
    claims: dict[str, Any] = {
        settings.jwt_email_claim: email.strip().lower(),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=hours)).timestamp()),
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
