"""The OpenID Connect client proper: discovery, keys, the code exchange and the ID token's checks.

A module of its own, imported only when sign-in is configured: Authlib, joserfc and requests (with the
cryptography package) are a large part of a start, and a server without sign-in needs none of them."""

from __future__ import annotations

import threading
import time
from typing import Any, cast
from urllib.parse import urlsplit

import requests
import structlog
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, KeySetSerialization

from api.web.oidc import (
    _CACHE_SECONDS,
    _KEYS_REREAD_GAP,
    HTTP_TIMEOUT,
    ID_TOKEN_ALGORITHMS,
    LEEWAY,
    SCOPES,
    START_AGAIN,
    Pending,
    SignInFailed,
    _unreachable,
    redirect_uri,
)
from dispute_service.config import Settings

log = structlog.get_logger("api.web.oidc")


class OpenIdProvider:
    """The council's identity provider as this service's client sees it. One per app; its methods block on
    HTTP (at most `HTTP_TIMEOUT` a call), so the routes run them on a thread."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self._client_secret = settings.oidc_client_secret
        self._redirect_uri = redirect_uri(settings)
        self._email_claim = settings.jwt_email_claim
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    # Discovery.
    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, read at most once in `_CACHE_SECONDS`. If a re-read fails, the
        copy in hand serves on (a provider's brief outage need not stop sign-in)."""
        with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at >= _CACHE_SECONDS:
                try:
                    self._metadata = self._discover()
                    self._metadata_at = time.monotonic()
                except SignInFailed:
                    if self._metadata is None:
                        raise
                    log.warning("sign_in.discovery_stale", issuer=self.issuer)
            return self._metadata

    def _discover(self) -> dict[str, Any]:
        url = f"{self.issuer}/.well-known/openid-configuration"
        document = _get_json(url, "discovery")
        # OpenID Connect Discovery 1.0, section 4.3: the document must be the configured issuer's own, or a
        # look-alike could name its own endpoints and keys.
        if not isinstance(document.get("issuer"), str) or document["issuer"].rstrip("/") != self.issuer:
            log.error(
                "sign_in.discovery_issuer_mismatch",
                issuer=self.issuer,
                found=str(document.get("issuer"))[:200],
            )
            raise _unreachable("discovery_issuer_mismatch")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            endpoint = document.get(name)
            # An https issuer's endpoints must be https too; plain http only for a provider on loopback,
            # which the settings allow an http issuer for.
            if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in (
                "https",
                urlsplit(self.issuer).scheme,
            ):
                log.error("sign_in.discovery_incomplete", issuer=self.issuer, missing=name)
                raise _unreachable("discovery_incomplete")
        return document

    def _token_endpoint_auth_method(self, metadata: dict[str, Any]) -> str:
        # client_secret_basic is the default when the provider does not say (Discovery 1.0, section 3).
        supported = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        return "client_secret_basic" if "client_secret_basic" in supported else "client_secret_post"

    def _session(self, metadata: dict[str, Any]) -> OAuth2Session:
        return OAuth2Session(
            client_id=self.client_id,
            client_secret=self._client_secret,
            token_endpoint_auth_method=self._token_endpoint_auth_method(metadata),
            scope=SCOPES,
            redirect_uri=self._redirect_uri,
            code_challenge_method="S256",
            default_timeout=HTTP_TIMEOUT,
        )

    # The two halves of the flow.
    def start(self, next_path: str) -> tuple[str, Pending]:
        """The provider's address to send the browser to, and the pending sign-in to remember meanwhile."""
        metadata = self.metadata()
        pending = Pending.new(next_path, int(time.time()))
        with self._session(metadata) as session:
            url, _ = session.create_authorization_url(
                metadata["authorization_endpoint"],
                state=pending.state,
                nonce=pending.nonce,
                code_verifier=pending.code_verifier,
            )
        return str(url), pending

    def finish(self, code: str, pending: Pending) -> str:
        """Exchange `code` for an ID token, verify it, and return the email address it names, lower-cased.
        The state has already been matched to `pending`."""
        metadata = self.metadata()
        with self._session(metadata) as session:
            try:
                tokens = session.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=pending.code_verifier,
                )
            except OAuthError as exc:
                # The provider's error code only: its description may quote what was sent.
                log.warning("sign_in.token_refused", error=str(exc.error)[:100])
                raise SignInFailed("token_refused", START_AGAIN) from None
            except requests.RequestException as exc:
                log.warning("sign_in.token_unreachable", error=type(exc).__name__)
                raise _unreachable("token_unreachable") from None
            except ValueError:
                log.warning("sign_in.token_unreadable")
                raise SignInFailed("token_unreadable", START_AGAIN) from None
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            log.warning("sign_in.no_id_token")
            raise SignInFailed("no_id_token", START_AGAIN)
        claims = self._verified_claims(metadata, id_token, pending, tokens.get("access_token"))
        return self._email(claims)

    # The ID token (OpenID Connect Core 1.0, section 3.1.3.7).
    def _keys_for(self, metadata: dict[str, Any], *, reread: bool) -> KeySet:
        with self._lock:
            age = time.monotonic() - self._keys_at
            if self._keys is None or age >= _CACHE_SECONDS or (reread and age >= _KEYS_REREAD_GAP):
                try:
                    document = _get_json(metadata["jwks_uri"], "keys")
                    self._keys = KeySet.import_key_set(cast(KeySetSerialization, document))
                except (JoseError, KeyError, TypeError, ValueError):
                    log.error("sign_in.keys_unreadable", issuer=self.issuer)
                    if self._keys is None:
                        raise _unreachable("keys_unreadable") from None
                except SignInFailed:
                    if self._keys is None:
                        raise
                else:
                    self._keys_at = time.monotonic()
            return self._keys

    def _verified_claims(
        self, metadata: dict[str, Any], id_token: str, pending: Pending, access_token: object
    ) -> dict[str, Any]:
        advertised = metadata.get("id_token_signing_alg_values_supported")
        algorithms = [
            alg for alg in ID_TOKEN_ALGORITHMS if not isinstance(advertised, list) or alg in advertised
        ]
        try:
            try:
                token = jwt.decode(id_token, self._keys_for(metadata, reread=False), algorithms=algorithms)
            except InvalidKeyIdError:
                # Perhaps the provider has rotated its keys since they were read.
                token = jwt.decode(id_token, self._keys_for(metadata, reread=True), algorithms=algorithms)
            params: dict[str, Any] = {"nonce": pending.nonce, "client_id": self.client_id}
            if isinstance(access_token, str):
                params["access_token"] = access_token  # at_hash, when the token has one, must match it
            claims = CodeIDToken(
                token.claims,
                token.header,
                {
                    "iss": {"essential": True, "value": metadata["issuer"]},
                    "aud": {"essential": True, "value": self.client_id},
                },
                params,
            )
            # Wall-clock time, not the app's clock: the token's times are the provider's, in real time.
            claims.validate(now=int(time.time()), leeway=LEEWAY)
        except JoseError as exc:
            # The check that failed, never the token.
            log.warning(
                "sign_in.id_token_refused", error=type(exc).__name__, claim=getattr(exc, "claim", None)
            )
            raise SignInFailed("id_token_refused", START_AGAIN) from None
        # Issued for this sign-in, not before it began: an older token cannot be replayed into it.
        if claims["iat"] < pending.issued_at - LEEWAY:
            log.warning("sign_in.id_token_refused", error="issued_before_sign_in")
            raise SignInFailed("id_token_refused", START_AGAIN)
        return dict(claims)

    def _email(self, claims: dict[str, Any]) -> str:
        email = claims.get(self._email_claim)
        if not isinstance(email, str) or not 0 < len(email.strip()) <= 320:
            log.warning("sign_in.no_email", claim=self._email_claim)
            raise SignInFailed(
                "no_email",
                "Your council account did not give this service an email address, so you cannot be signed "
                "in. Ask your service's administrator.",
                403,
            )
        # A provider that says the address is unverified has not vouched for it.
        if claims.get("email_verified") is False and self._email_claim == "email":
            log.warning("sign_in.email_unverified")
            raise SignInFailed(
                "email_unverified",
                "Your council account's email address has not been verified, so you cannot be signed in. "
                "Ask your service's administrator.",
                403,
            )
        return email.strip().lower()


def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning(f"sign_in.{what}_unreachable", url=url, error=type(exc).__name__)
        raise _unreachable(f"{what}_unreachable") from None
    if not isinstance(document, dict):
        log.warning(f"sign_in.{what}_unreadable", url=url)
        raise _unreachable(f"{what}_unreadable")
    return document
