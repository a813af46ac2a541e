"""Tokens: HS256 with the shared secret, or RS256 from a JWKS; the claim that holds the email is a setting.
Every token carries `iat` and `exp`, at most DISPUTES_TOKEN_MAX_HOURS apart."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from api.app import Mode, create_app
from dispute_service.config import DEV_SECRET, Settings


@pytest.fixture
def identity_provider() -> Iterator[tuple[str, Any]]:
    """A real JWKS endpoint on loopback, as Entra ID or Keycloak would serve it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="test-key", use="sig", alg="RS256")
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/keys", key
    server.shutdown()


def rs256(key: Any, claims: dict[str, Any]) -> str:
    now = datetime.now(UTC)
    full = {"iat": now, "exp": now + timedelta(minutes=5), **claims}
    return jwt.encode(full, key, algorithm="RS256", headers={"kid": "test-key"})


ISSUER = "https://login.example/tenant"
AUDIENCE = "dispute-service"


def entra_settings(settings: Settings, url: str) -> Settings:
    # No JWT secret of its own: with a JWKS, HS256 is off, so a strict start does not ask for one.
    return settings.model_copy(
        update={
            "jwks_url": url,
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            "jwt_email_claim": "preferred_username",
            "jwt_secret": DEV_SECRET,
        }
    )


def status(client: TestClient, token: str) -> int:
    return client.get("/api/v1/disputes", headers={"Authorization": f"Bearer {token}"}).status_code


def test_rs256_tokens_from_a_jwks_with_the_entra_claim(
    settings: Settings, staff: list[str], identity_provider: tuple[str, Any]
) -> None:
    url, key = identity_provider
    good = {"preferred_username": "IRO@example.gov.uk", "iss": ISSUER, "aud": AUDIENCE}
    with TestClient(create_app(entra_settings(settings, url), mode=Mode.STRICT)) as client:
        assert status(client, rs256(key, good)) == 200
        for bad in (
            {**good, "aud": "someone-else"},
            {**good, "iss": "https://evil.example"},
            {k: v for k, v in good.items() if k != "preferred_username"},
        ):
            assert status(client, rs256(key, bad)) == 401, bad
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        assert status(client, rs256(other_key, good)) == 401
        # With a JWKS configured, a token signed with the shared secret is not accepted.
        hs = jwt.encode({"preferred_username": "iro@example.gov.uk", "exp": 4102444800}, settings.jwt_secret)
        assert status(client, hs) == 401


def test_with_a_jwks_every_token_needs_iss_aud_iat_and_a_short_life(
    settings: Settings, staff: list[str], identity_provider: tuple[str, Any]
) -> None:
    url, key = identity_provider
    now = datetime.now(UTC)
    good = {"preferred_username": "iro@example.gov.uk", "iss": ISSUER, "aud": AUDIENCE}
    with TestClient(create_app(entra_settings(settings, url), mode=Mode.STRICT)) as client:
        assert status(client, rs256(key, good)) == 200
        for missing in ("iss", "aud"):
            assert status(client, rs256(key, {k: v for k, v in good.items() if k != missing})) == 401, missing
        no_iat = jwt.encode(
            {**good, "exp": now + timedelta(minutes=5)}, key, algorithm="RS256", headers={"kid": "test-key"}
        )
        assert status(client, no_iat) == 401
        assert status(client, rs256(key, {**good, "exp": now + timedelta(hours=13)})) == 401
        # An HS256 token signed with the shared secret, aimed at the JWKS key and complete in every claim.
        hs = jwt.encode(
            {**good, "iat": now, "exp": now + timedelta(minutes=5)},
            settings.jwt_secret,
            algorithm="HS256",
            headers={"kid": "test-key"},
        )
        assert status(client, hs) == 401


def test_a_jwks_without_issuer_and_audience_accepts_no_token(
    settings: Settings, staff: list[str], identity_provider: tuple[str, Any]
) -> None:
    # A strict start refuses these settings; a demo app built with them refuses every token instead, since
    # it could not tell the identity provider's tokens for this service from those for any other.
    url, key = identity_provider
    unpinned = entra_settings(settings, url).model_copy(update={"jwt_issuer": None, "jwt_audience": None})
    with TestClient(create_app(unpinned, mode=Mode.DEMO)) as client:
        response = client.get(
            "/api/v1/disputes",
            headers={"Authorization": f"Bearer {rs256(key, {'preferred_username': 'iro@example.gov.uk'})}"},
        )
        assert response.status_code == 401
        assert "DISPUTES_JWT_ISSUER" in response.json()["detail"]


def test_expired_and_expiry_less_tokens_are_refused(client: TestClient, settings: Settings) -> None:
    past = jwt.encode({"email": "iro@example.gov.uk", "exp": 1}, settings.jwt_secret)
    forever = jwt.encode({"email": "iro@example.gov.uk"}, settings.jwt_secret)
    for token in (past, forever, "not-a-jwt"):
        assert client.get("/api/v1/disputes", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def _hs256(settings: Settings, **claims: Any) -> str:
    return jwt.encode({"email": "iro@example.gov.uk", **claims}, settings.jwt_secret, algorithm="HS256")


def test_a_token_without_iat_is_refused(client: TestClient, settings: Settings) -> None:
    exp = datetime.now(UTC) + timedelta(hours=1)
    assert status(client, _hs256(settings, exp=exp)) == 401
    assert status(client, _hs256(settings, exp=exp, iat=datetime.now(UTC))) == 200


def test_a_token_living_longer_than_the_maximum_is_refused(client: TestClient, settings: Settings) -> None:
    now = datetime.now(UTC)
    twelve = _hs256(settings, iat=now, exp=now + timedelta(hours=12))
    assert status(client, twelve) == 200
    # A second over twelve hours, even with most of that life still ahead.
    longer = _hs256(settings, iat=now, exp=now + timedelta(hours=12, seconds=1))
    refused = client.get("/api/v1/disputes", headers={"Authorization": f"Bearer {longer}"})
    assert refused.status_code == 401
    assert "12 hours" in refused.json()["detail"]
    # Nor can a token dated ahead stretch its life: an `iat` in the future is refused.
    ahead = _hs256(settings, iat=now + timedelta(hours=6), exp=now + timedelta(hours=18))
    assert status(client, ahead) == 401


def test_the_maximum_lifetime_is_a_setting(
    settings: Settings, staff: list[str], token_for: Callable[[str], dict[str, str]]
) -> None:
    short = settings.model_copy(update={"token_max_hours": 1})
    now = datetime.now(UTC)
    with TestClient(create_app(short, mode=Mode.STRICT)) as client:
        assert status(client, _hs256(settings, iat=now, exp=now + timedelta(minutes=60))) == 200
        assert status(client, _hs256(settings, iat=now, exp=now + timedelta(minutes=61))) == 401
        # The development token lives 12 hours, over this service's maximum.
        assert client.get("/api/v1/disputes", headers=token_for("iro@example.gov.uk")).status_code == 401
