"""Bearer tokens: HS256 with a shared secret, or RS256 from an identity provider's JWKS.

The token only says who the caller is; the staff directory decides what they may do.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dispute_service.config import Settings, jwks_problems
from dispute_service.errors import Unauthenticated

if TYPE_CHECKING:
    import jwt
    from jwt.types import Options

# How many verified tokens are remembered, and for how long at most.
VERIFIED_TOKENS = 4096
VERIFIED_TOKEN_SECONDS = 300


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # A strict start refuses these; in demo mode every token is refused instead, as an identity
        # provider's keys with no issuer and audience to pin would let in tokens it issued to anyone else.
        self._misconfigured = jwks_problems(settings)
        # Made on first use, as PyJWT is imported only then: see `_verify`.
        self._jwks: jwt.PyJWKClient | None = None
        # Tokens already verified, with their claims: a client sends the same token with every request,
        # and checking its signature again cost about a tenth of a small request's time. Bounded in
        # number, and each kept for a few minutes at most, so a key withdrawn from the JWKS soon stops
        # working; a token's own expiry is checked on every use.
        self._verified: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

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
        if self._misconfigured:
            raise Unauthenticated("the service cannot check tokens: " + "; ".join(self._misconfigured))
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            verified_at, claims = cached
            if now < int(claims["exp"]) and now - verified_at < VERIFIED_TOKEN_SECONDS:
                self._verified.move_to_end(token)
                return claims
            del self._verified[token]
        claims = self._verify(token)
        self._verified[token] = (now, claims)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str) -> dict[str, Any]:
        # Imported on the first token to check, not at start-up: PyJWT brings in the cryptography package
        # (for RS256), a tenth of the server's start-up imports, and the start needs none of it.
        import jwt

        s = self._settings
        # Without `iat` a token's lifetime cannot be told, so both ends are required.
        required = ["exp", "iat"]
        try:
            if s.jwks_url:
                if self._jwks is None:
                    # Two requests at once may each make one; the second replaces the first, harmlessly.
                    self._jwks = jwt.PyJWKClient(s.jwks_url)
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
    import jwt  # as in `TokenVerifier._verify`: only what signs or checks a token imports PyJWT

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
