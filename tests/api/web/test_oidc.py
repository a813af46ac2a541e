"""Signing in with the council's identity provider (`api/web/oidc.py`): the whole round trip through a real
OpenID provider (oidc-provider from npm, `tests/oidc/provider.mjs`), and each way a sign-in is refused."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from structlog.testing import capture_logs

from api.app import Mode, create_app
from api.web import oidc, oidc_client
from api.web.oidc import PENDING_COOKIE, Pending, SignInFailed
from api.web.oidc_client import OpenIdProvider
from api.web.signin import SESSION_COOKIE
from dispute_service.config import Settings
from tests.factories import GONE_EMAIL, IRO_EMAIL, FakeClock
from tests.oidc_provider import openid_provider, sign_in_at_provider
from tests.pages import SESSION_SECRET, csrf_of
from tests.processes import free_port

CLIENT_ID = "dispute-service"
CLIENT_SECRET = "client-secret-0123456789abcdef0123"
# The `settings` fixture's public base URL, and so the redirect URI the app sends and the provider allows.
REDIRECT_URI = "http://localhost:8000/auth/callback"
# A loopback port nothing listens on: a provider that cannot be reached.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def provider_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """The issuer of a running provider whose client authenticates with the given method; each is started
    at its first use and stopped at the end of the run."""
    started: dict[str, str] = {}
    with ExitStack() as stack:

        def issuer(auth_method: str) -> str:
            if auth_method not in started:
                log = tmp_path_factory.mktemp("oidc") / f"{auth_method}.log"
                started[auth_method] = stack.enter_context(
                    openid_provider(free_port(), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, log, auth_method)
                )
            return started[auth_method]

        yield issuer


def app_signing_in_at(settings: Settings, clock: FakeClock, issuer: str) -> TestClient:
    configured = settings.model_copy(
        update={
            "session_secret": SESSION_SECRET,
            "oidc_issuer": issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET,
        }
    )
    # Strict, as deployed: a loopback http issuer is allowed.
    return TestClient(create_app(configured, mode=Mode.STRICT, clock=clock))


@pytest.fixture
def signing_in(
    settings: Settings, clock: FakeClock, staff: list[str], provider_for: Callable[[str], str]
) -> Iterator[TestClient]:
    """The app, signing in at the real provider (client_secret_basic)."""
    with app_signing_in_at(settings, clock, provider_for("client_secret_basic")) as client:
        yield client


@pytest.fixture
def unreachable(settings: Settings, clock: FakeClock, staff: list[str]) -> Iterator[TestClient]:
    """The app configured for a provider that is not there: for what is refused before it is asked."""
    with app_signing_in_at(settings, clock, NOWHERE) as client:
        yield client


def begin(client: TestClient, next_path: str = "/") -> str:
    """Press "Sign in with your council account": returns the provider's address the app sends the
    browser to."""
    page = client.get("/sign-in", params={"next": next_path})
    answer = client.post(
        "/sign-in", data={"csrf_token": csrf_of(page.text), "next": next_path}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


@dataclass
class Arrival:
    page: Any
    logs: list[dict[str, Any]]

    def refused(self, status: int, reason: str) -> str:
        """Assert the sign-in page refused it with `status`, for `reason` (as logged), nobody signed in;
        returns the page."""
        assert self.page.status_code == status, self.page.text
        assert [log.get("reason") for log in self.logs if log["event"] == "sign_in.refused"] == [reason]
        assert "There is a problem" in self.page.text
        assert SESSION_COOKIE not in self.page.cookies
        return str(self.page.text)


def callback(client: TestClient, url: str) -> Arrival:
    """The browser arriving back at the app from the provider, and what the app logged meanwhile."""
    parts = urlsplit(url)
    with capture_logs() as logs:
        page = client.get(f"{parts.path}?{parts.query}", follow_redirects=False)
    return Arrival(page, logs)


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    kept = {name: value for name, value in query.items() if value is not None}
    return parts._replace(query=urlencode(kept)).geturl()


# The round trip.


@pytest.mark.slow
@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_a_person_signs_in_at_the_provider_and_lands_where_they_were_going(
    settings: Settings,
    clock: FakeClock,
    staff: list[str],
    provider_for: Callable[[str], str],
    auth_method: str,
) -> None:
    issuer = provider_for(auth_method)
    with app_signing_in_at(settings, clock, issuer) as client:
        authorize = begin(client, "/?page=1")
        assert authorize.startswith(f"{issuer}/auth?")
        sent = parse_qs(urlsplit(authorize).query)
        assert sent["client_id"] == [CLIENT_ID]
        assert sent["redirect_uri"] == [REDIRECT_URI]
        assert sent["scope"] == ["openid email profile"]
        assert sent["code_challenge_method"] == ["S256"]
        assert sent["state"] and sent["nonce"] and sent["code_challenge"]
        assert client.cookies.get(PENDING_COOKIE)

        # The provider's login form takes any address; the directory's are lower case.
        back = sign_in_at_provider(authorize, IRO_EMAIL.upper(), REDIRECT_URI)
        arrival = callback(client, back)
        assert arrival.page.status_code == 303, arrival.page.text
        assert arrival.page.headers["location"] == "/?page=1"
        assert SESSION_COOKIE in arrival.page.cookies
        assert client.cookies.get(PENDING_COOKIE) is None
        # Neither the code nor any token (a JWT starts "eyJ") is logged.
        code = parse_qs(urlsplit(back).query)["code"][0]
        assert code not in repr(arrival.logs) and "eyJ" not in repr(arrival.logs)

        page = client.get("/")
        assert page.status_code == 200
        assert "Open disputes you raised" in page.text

        # The same return cannot be used again: the pending sign-in went with it.
        client.cookies.delete(SESSION_COOKIE)
        callback(client, back).refused(400, "no_pending_sign_in")


@pytest.mark.slow
@pytest.mark.parametrize("email", [GONE_EMAIL, "stranger@example.gov.uk"])
def test_someone_not_active_in_the_directory_is_refused_at_sign_in(
    signing_in: TestClient, email: str
) -> None:
    back = sign_in_at_provider(begin(signing_in), email, REDIRECT_URI)
    assert "not active in the staff directory" in callback(signing_in, back).refused(403, "not_in_directory")
    assert signing_in.get("/", follow_redirects=False).headers["location"] == "/sign-in"


@pytest.mark.slow
@pytest.mark.parametrize("state", ["tampered", None, ""])
def test_a_return_whose_state_is_not_this_browsers_is_refused(
    signing_in: TestClient, state: str | None
) -> None:
    back = sign_in_at_provider(begin(signing_in), IRO_EMAIL, REDIRECT_URI)
    page = callback(signing_in, with_query(back, state=state)).refused(400, "state_mismatch")
    assert "Start again" in page
    assert signing_in.cookies.get(PENDING_COOKIE) is None


@pytest.mark.slow
def test_a_return_naming_another_provider_is_refused(signing_in: TestClient) -> None:
    # RFC 9207's `iss`: the provider sends it, and it must be the one this service signs in at.
    back = sign_in_at_provider(begin(signing_in), IRO_EMAIL, REDIRECT_URI)
    assert parse_qs(urlsplit(back).query)["iss"]
    callback(signing_in, with_query(back, iss="https://login.example/other")).refused(400, "issuer_mismatch")


@pytest.mark.slow
def test_a_return_to_a_browser_that_began_no_sign_in_is_refused(signing_in: TestClient) -> None:
    # Login CSRF: someone else's code, handed to this browser.
    back = sign_in_at_provider(begin(signing_in), IRO_EMAIL, REDIRECT_URI)
    signing_in.cookies.delete(PENDING_COOKIE, path="/auth/callback")
    assert "Start again" in callback(signing_in, back).refused(400, "no_pending_sign_in")


@pytest.mark.slow
def test_a_code_the_provider_will_not_exchange_is_refused(signing_in: TestClient) -> None:
    back = sign_in_at_provider(begin(signing_in), IRO_EMAIL, REDIRECT_URI)
    arrival = callback(signing_in, with_query(back, code="not-a-code-the-provider-issued"))
    assert "could not be completed" in arrival.refused(400, "token_refused")


# Refused before the provider is asked.


def test_sign_in_without_its_form_token_is_refused(unreachable: TestClient) -> None:
    unreachable.get("/sign-in")
    assert unreachable.post("/sign-in", data={"next": "/"}, follow_redirects=False).status_code == 403
    forged = unreachable.post("/sign-in", data={"csrf_token": "x.y", "next": "/"}, follow_redirects=False)
    assert forged.status_code == 403


def test_a_provider_that_cannot_be_reached_gets_the_sign_in_page_saying_so(unreachable: TestClient) -> None:
    page = unreachable.get("/sign-in")
    with capture_logs() as logs:
        answer = unreachable.post("/sign-in", data={"csrf_token": csrf_of(page.text), "next": "/"})
    assert "could not be reached" in Arrival(answer, logs).refused(502, "discovery_unreachable")


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [("access_denied", 403, "provider_access_denied"), ("server_error", 400, "provider_error")],
)
def test_an_error_from_the_provider_is_shown_in_the_services_words(
    unreachable: TestClient, error: str, status: int, reason: str
) -> None:
    query = urlencode({"error": error, "error_description": "<b>echo</b>"})
    page = callback(unreachable, f"/auth/callback?{query}").refused(status, reason)
    assert "<b>echo</b>" not in page


def test_what_the_provider_sends_back_is_length_capped(unreachable: TestClient) -> None:
    assert unreachable.get("/auth/callback", params={"code": "c", "state": "s" * 201}).status_code == 422
    assert unreachable.get("/auth/callback", params={"code": "c" * 4097, "state": "s"}).status_code == 422


def test_without_sign_in_settings_there_is_no_provider_to_go_to(pages: TestClient) -> None:
    page = pages.get("/sign-in")
    assert "not configured" in page.text
    assert pages.post("/sign-in", data={"next": "/"}).status_code == 404
    assert pages.get("/auth/callback", params={"code": "c", "state": "s"}).status_code == 404


# The ID token's checks, one by one, against keys and a discovery document given to the provider object.

ISSUER = "https://login.example/tenant/v2.0"


@pytest.fixture
def provider_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


@pytest.fixture
def checker(provider_key: RSAKey) -> OpenIdProvider:
    # No database: only the provider object, its settings, and the keys it would have read.
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        oidc_issuer=ISSUER,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
    provider = OpenIdProvider(settings)
    public = KeySet.import_key_set({"keys": [provider_key.as_dict(private=False)]})
    provider._keys, provider._keys_at = public, time.monotonic()
    return provider


METADATA = {"issuer": ISSUER, "jwks_uri": "https://login.example/keys"}


def jwt_claims(**changes: Any) -> dict[str, Any]:
    """An ID token's claims, as the provider would send them for this sign-in, with `changes` (None
    leaves a claim out)."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "s",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": "the-nonce",
        "email": "IRO@example.gov.uk",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def id_token(key: RSAKey | OctKey, alg: str = "RS256", **changes: Any) -> str:
    return jwt.encode({"alg": alg, "kid": "k1"}, jwt_claims(**changes), key, algorithms=[alg])


def pending() -> Pending:
    return Pending("state", "the-nonce", "v" * 43, "/", int(time.time()) - 5)


def test_a_good_id_token_gives_its_email_lower_cased(checker: OpenIdProvider, provider_key: RSAKey) -> None:
    claims = checker._verified_claims(METADATA, id_token(provider_key), pending(), None)
    assert checker._email(claims) == "iro@example.gov.uk"


def refused_because(checker: OpenIdProvider, token: str) -> str:
    """Assert the ID token is refused; returns why, as logged (the check that failed, never the token)."""
    with capture_logs() as logs, pytest.raises(SignInFailed) as refused:
        checker._verified_claims(METADATA, token, pending(), None)
    assert refused.value.status == 400
    [logged] = [log for log in logs if log["event"] == "sign_in.id_token_refused"]
    return str(logged.get("claim") or logged["error"])


@dataclass(frozen=True)
class FromNow:
    """A time claim this many seconds from when the test runs: the parameters are made when the tests are
    collected, and a long run reaches this test more than ten minutes later."""

    seconds: int


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"iss": "https://login.example/other-tenant/v2.0"}, "iss"),
        ({"aud": "another-application"}, "aud"),
        ({"aud": None}, "aud"),
        ({"nonce": "another-nonce"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"exp": FromNow(-600)}, "exp"),
        ({"iat": FromNow(600)}, "iat"),
        ({"iat": FromNow(-3600)}, "issued_before_sign_in"),
    ],
    ids=["issuer", "audience", "no-audience", "nonce", "no-nonce", "expired", "future", "before-sign-in"],
)
def test_an_id_token_failing_a_check_is_refused(
    checker: OpenIdProvider, provider_key: RSAKey, changes: dict[str, Any], why: str
) -> None:
    now = int(time.time())
    claims = {k: now + v.seconds if isinstance(v, FromNow) else v for k, v in changes.items()}
    assert refused_because(checker, id_token(provider_key, **claims)) == why


def test_an_id_token_not_signed_by_the_providers_key_is_refused(checker: OpenIdProvider) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    assert refused_because(checker, id_token(impostor)) == "BadSignatureError"
    # Signed with the client secret, which this service holds too: it proves nothing about the provider.
    with_secret = OctKey.import_key(CLIENT_SECRET)
    assert refused_because(checker, id_token(with_secret, alg="HS256")) == "UnsupportedAlgorithmError"


def test_an_unverified_or_missing_email_is_refused(checker: OpenIdProvider, provider_key: RSAKey) -> None:
    for changes in ({"email_verified": False}, {"email": None}, {"email": 7}):
        claims = checker._verified_claims(METADATA, id_token(provider_key, **changes), pending(), None)
        with pytest.raises(SignInFailed) as refused:
            checker._email(claims)
        assert refused.value.status == 403


def test_a_token_signed_by_a_key_not_yet_seen_rereads_the_keys_once(
    checker: OpenIdProvider, provider_key: RSAKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The provider has rotated to a new key since this service read its keys.
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    reads: list[str] = []

    def read(url: str, what: str) -> dict[str, Any]:
        reads.append(url)
        return {"keys": [provider_key.as_dict(private=False), rotated.as_dict(private=False)]}

    monkeypatch.setattr(oidc_client, "_get_json", read)
    checker._keys_at -= oidc._KEYS_REREAD_GAP
    token = jwt.encode({"alg": "RS256", "kid": "k2"}, jwt_claims(), rotated, algorithms=["RS256"])
    assert checker._verified_claims(METADATA, token, pending(), None)["sub"] == "s"
    assert reads == [METADATA["jwks_uri"]]

    # A key id nobody published: the keys were read a moment ago, so they are not read again.
    unknown = RSAKey.generate_key(2048, parameters={"kid": "k3"})
    token = jwt.encode({"alg": "RS256", "kid": "k3"}, jwt_claims(), unknown, algorithms=["RS256"])
    assert refused_because(checker, token) == "InvalidKeyIdError"
    assert len(reads) == 1


@pytest.mark.parametrize(
    "document",
    [
        {"issuer": "https://login.example/another-tenant/v2.0"},
        {"issuer": ISSUER, "token_endpoint": "http://login.example/token"},
    ],
    ids=["another-issuer", "plain-http-endpoint"],
)
def test_a_discovery_document_that_is_not_the_issuers_own_is_refused(
    checker: OpenIdProvider, monkeypatch: pytest.MonkeyPatch, document: dict[str, str]
) -> None:
    endpoints = {
        name: f"https://login.example/{name}" for name in ("authorization_endpoint", "token_endpoint")
    }
    monkeypatch.setattr(oidc_client, "_get_json", lambda url, what: {**endpoints, **METADATA, **document})
    with pytest.raises(SignInFailed) as refused:
        checker.metadata()
    assert refused.value.status == 502


def test_what_a_return_says_of_an_error_never_reaches_the_logs(unreachable: TestClient) -> None:
    # Anyone can write the query string: a made-up description (a name, say) must not be logged, nor a code
    # that is not one of OAuth's.
    crafted = {"error": "Jane Smith LCS-000777", "error_description": "Jane Smith (DOB 1/2/2010)"}
    with capture_logs() as logs:
        unreachable.get("/auth/callback", params=crafted)
        unreachable.get("/auth/callback", params={"error": "server_error", "error_description": "Jane"})
    logged = repr(logs)
    assert "Jane" not in logged and "LCS-000777" not in logged
    errors = [entry["error"] for entry in logs if entry["event"] == "sign_in.provider_error"]
    assert errors == ["other", "server_error"]
