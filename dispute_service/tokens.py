"""Development tokens, for `dispute-service token EMAIL`, the README walk-through and the tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jwt

from dispute_service.config import Settings


def development_token(settings: Settings, email: str, now: datetime, hours: int = 12) -> str:
    """An HS256 token for local use and tests (`dispute-service token EMAIL`)."""
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
