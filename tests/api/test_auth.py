"""Tokens: HS256 with the shared secret, or RS256 from a JWKS; the claim that holds the email is a setting."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from api.app import Mode, create_app
from dispute_service.config import Settings


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


def test_rs256_tokens_from_a_jwks_with_the_entra_claim(
    settings: Settings, staff: list[str], identity_provider: tuple[str, Any]
) -> None:
    url, key = identity_provider
    entra = settings.model_copy(
        update={
            "jwks_url": url,
            "jwt_issuer": "https://login.example/tenant",
            "jwt_audience": "dispute-service",
            "jwt_email_claim": "preferred_username",
        }
    )
    good = {
        "preferred_username": "IRO@example.gov.uk",
        "iss": "https://login.example/tenant",
        "aud": "dispute-service",
    }
    with TestClient(create_app(entra, mode=Mode.STRICT)) as client:
        ok = client.get("/api/v1/disputes", headers={"Authorization": f"Bearer {rs256(key, good)}"})
        assert ok.status_code == 200, ok.text
        for bad in (
            {**good, "aud": "someone-else"},
            {**good, "iss": "https://evil.example"},
            {k: v for k, v in good.items() if k != "preferred_username"},
        ):
            refused = client.get("/api/v1/disputes", headers={"Authorization": f"Bearer {rs256(key, bad)}"})
            assert refused.status_code == 401, bad
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = client.get("/api/v1/disputes", headers={"Authorization": f"Bearer {rs256(other_key, good)}"})
        assert forged.status_code == 401
        # With a JWKS configured, a token signed with the shared secret is not accepted.
        hs = jwt.encode({"preferred_username": "iro@example.gov.uk", "exp": 4102444800}, settings.jwt_secret)
        assert client.get("/api/v1/disputes", headers={"Authorization": f"Bearer {hs}"}).status_code == 401


def test_expired_and_expiry_less_tokens_are_refused(client: TestClient, settings: Settings) -> None:
    past = jwt.encode({"email": "iro@example.gov.uk", "exp": 1}, settings.jwt_secret)
    forever = jwt.encode({"email": "iro@example.gov.uk"}, settings.jwt_secret)
    for token in (past, forever, "not-a-jwt"):
        assert client.get("/api/v1/disputes", headers={"Authorization": f"Bearer {token}"}).status_code == 401
