"""What a strict start refuses (`unsafe_settings`): one sentence per setting at fault, each naming it."""

from __future__ import annotations

from typing import Any

import pytest

from dispute_service.config import DEV_SECRET, MAKE_A_SECRET, Settings, is_loopback, unsafe_settings

GOOD = "g" * 32


def settings(**values: Any) -> Settings:
    """Safe settings (secrets of 32 bytes, mail and links on loopback), changed by `values`."""
    base: dict[str, Any] = {"jwt_secret": GOOD, "link_secret": GOOD, "audit_key": GOOD}
    return Settings(_env_file=None, **{**base, **values})  # type: ignore[call-arg]


def named(problems: list[str]) -> list[str]:
    return [problem.split()[0] for problem in problems]


def test_safe_settings_pass() -> None:
    assert unsafe_settings(settings()) == []


def test_the_defaults_are_refused_all_at_once() -> None:
    problems = unsafe_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert named(problems) == ["DISPUTES_JWT_SECRET", "DISPUTES_LINK_SECRET", "DISPUTES_AUDIT_KEY"]
    for problem in problems:
        assert "not set" in problem
        assert MAKE_A_SECRET in problem


@pytest.mark.parametrize("field", ["jwt_secret", "link_secret", "audit_key"])
@pytest.mark.parametrize("value", [DEV_SECRET, "", "x" * 31, "é" * 15])
def test_each_secret_must_be_set_and_32_bytes(field: str, value: str) -> None:
    problems = unsafe_settings(settings(**{field: value}))
    assert named(problems) == [f"DISPUTES_{field.upper()}"]
    assert MAKE_A_SECRET in problems[0]


def test_32_bytes_is_enough_even_in_fewer_characters() -> None:
    assert unsafe_settings(settings(jwt_secret="é" * 16)) == []


def test_with_a_jwks_no_jwt_secret_is_needed_but_issuer_and_audience_are() -> None:
    jwks = {"jwks_url": "https://login.example/keys", "jwt_secret": DEV_SECRET}
    assert named(unsafe_settings(settings(**jwks))) == ["DISPUTES_JWT_ISSUER", "DISPUTES_JWT_AUDIENCE"]
    assert named(unsafe_settings(settings(**jwks, jwt_issuer="https://login.example/t"))) == [
        "DISPUTES_JWT_AUDIENCE"
    ]
    assert unsafe_settings(settings(**jwks, jwt_issuer="https://login.example/t", jwt_audience="ds")) == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]", "LOCALHOST"])
def test_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "10.0.0.1", "mail.example.gov.uk", "localhost.evil.example"]
)
def test_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_mail_to_another_machine_needs_tls() -> None:
    problems = unsafe_settings(settings(smtp_host="mail.example.gov.uk"))
    assert named(problems) == ["DISPUTES_SMTP_HOST"]
    assert "DISPUTES_SMTP_STARTTLS" in problems[0] and "DISPUTES_SMTP_TLS" in problems[0]
    assert unsafe_settings(settings(smtp_host="mail.example.gov.uk", smtp_starttls=True)) == []
    assert unsafe_settings(settings(smtp_host="mail.example.gov.uk", smtp_tls=True, smtp_port=465)) == []
    assert unsafe_settings(settings(smtp_host="127.0.0.1", smtp_port=1025)) == []


def test_starttls_and_implicit_tls_together_are_refused() -> None:
    both = unsafe_settings(settings(smtp_host="mail.example.gov.uk", smtp_starttls=True, smtp_tls=True))
    assert named(both) == ["DISPUTES_SMTP_STARTTLS"]


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://disputes.example.gov.uk", True),
        ("http://localhost:8000", True),
        ("http://127.0.0.1:8000/base", True),
        ("http://[::1]:8000", True),
        ("http://disputes.example.gov.uk", False),
        ("ftp://disputes.example.gov.uk", False),
        ("disputes.example.gov.uk", False),
        ("https://", False),
    ],
)
def test_links_need_https_unless_on_loopback(url: str, safe: bool) -> None:
    expected = [] if safe else ["DISPUTES_PUBLIC_BASE_URL"]
    assert named(unsafe_settings(settings(public_base_url=url))) == expected


OIDC = {
    "oidc_issuer": "https://login.microsoftonline.com/tenant/v2.0",
    "oidc_client_id": "client",
    "oidc_client_secret": "secret",
    "session_secret": GOOD,
}


def test_sign_in_settings_pass_together() -> None:
    assert unsafe_settings(settings(**OIDC)) == []


@pytest.mark.parametrize("field", ["oidc_issuer", "oidc_client_id", "oidc_client_secret"])
def test_sign_in_needs_the_issuer_client_id_and_secret_together(field: str) -> None:
    problems = unsafe_settings(settings(**{**OIDC, field: None}))
    assert named(problems) == [f"DISPUTES_{field.upper()}"]
    assert "together" in problems[0]


@pytest.mark.parametrize("value", [DEV_SECRET, "s" * 31])
def test_sign_in_needs_a_session_secret_of_32_bytes(value: str) -> None:
    problems = unsafe_settings(settings(**{**OIDC, "session_secret": value}))
    assert named(problems) == ["DISPUTES_SESSION_SECRET"]
    assert MAKE_A_SECRET in problems[0]


def test_without_sign_in_the_session_secret_is_not_needed() -> None:
    assert unsafe_settings(settings(session_secret=DEV_SECRET)) == []


@pytest.mark.parametrize(
    ("issuer", "safe"),
    [
        ("https://login.microsoftonline.com/tenant/v2.0", True),
        ("http://127.0.0.1:5556", True),
        ("http://localhost:5556/realms/council", True),
        ("http://login.example.gov.uk", False),
        ("ftp://login.example.gov.uk", False),
    ],
)
def test_the_issuer_needs_https_unless_on_loopback(issuer: str, safe: bool) -> None:
    expected = [] if safe else ["DISPUTES_OIDC_ISSUER"]
    assert named(unsafe_settings(settings(**{**OIDC, "oidc_issuer": issuer}))) == expected
