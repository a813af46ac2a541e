from __future__ import annotations

import hashlib
import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from states.policy import Policy, load_default_policy, parse_policy

DEV_SECRET = "dev-secret-change-me-0123456789abcdef"


class Settings(BaseSettings):
    """Every setting, from DISPUTES_* and .env; tests build one instead of editing the environment."""

    model_config = SettingsConfigDict(env_prefix="DISPUTES_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./disputes.db"
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=40, ge=0)
    policy: Path | None = None

    jwt_secret: str = DEV_SECRET
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_email_claim: str = "email"

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    # Implicit TLS (SMTPS, usually port 465) from the first byte, for servers that offer no STARTTLS.
    smtp_tls: bool = False
    mail_from: str = "disputes@localhost"
    public_base_url: str = "http://localhost:8000"
    link_secret: str = DEV_SECRET
    # Sign-in to the pages (README, "Signing in"): OpenID Connect against the council's identity provider.
    # Unset, a strict server serves the API alone and the pages say sign-in is not configured.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    # GOV.UK Frontend's built files (its package's dist/govuk): `npm ci` puts them in node_modules, the
    # Docker image in /app/assets/govuk. Unset: node_modules beside the source.
    assets_dir: Path | None = None
    # Signs the session cookie and the CSRF tokens of forms without a session.
    session_secret: str = DEV_SECRET
    mail_retry_seconds: float = Field(default=30.0, gt=0)
    mail_max_attempts: int = Field(default=8, ge=1)
    # How long a claimed email is left to its sender before another attempt may take it over.
    mail_claim_seconds: float = Field(default=120.0, gt=0)
    dispatch_interval_seconds: float = Field(default=5.0, gt=0)

    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = Field(default=1.0, gt=0)
    report_year_start_month: int = Field(default=4, ge=1, le=12)
    log_format: Literal["json", "console"] | None = None

    # The key of the keyed hash chains (the audit log, the people changes); kept outside the database.
    audit_key: str = DEV_SECRET
    # Retired audit keys, so entries signed before a rotation still verify: "id:key,id:key" (the id is the
    # first 8 hex digits of the key's SHA-256, as `key_id` on each entry; a bare "key" is accepted too).
    audit_keyring: str = ""
    # How often the service logs `audit.checkpoint` (the global chain's head), to be shipped off the database.
    checkpoint_minutes: float = Field(default=60.0, gt=0)
    # A token may live this long at most, from `iat` to `exp`.
    token_max_hours: float = Field(default=12.0, gt=0)
    # Unset: /metrics answers 404. Set: it needs `Authorization: Bearer <this>`.
    metrics_token: str | None = None
    api_docs: bool = True
    # Request bodies over these are refused with 413 before they are read.
    max_json_bytes: int = Field(default=65_536, ge=1024)
    max_form_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # Uses of email links allowed in each window, per address (the link's person) and per client (IP).
    rate_limit_window_seconds: float = Field(default=60.0, gt=0)
    link_uses_per_address: int = Field(default=10, ge=1)
    link_uses_per_client: int = Field(default=30, ge=1)
    # Sign-in attempts per client address in the same window (each may cost a call to the identity provider).
    sign_ins_per_client: int = Field(default=30, ge=1)
    # Reading a dispute by its link (SPEC 10): one-time codes asked for, and fresh links asked for at
    # /links/renew, per address in an hour (each sends an email to that address, so few are enough), and
    # the two together per client in each rate-limit window.
    link_codes_per_address: int = Field(default=5, ge=1)
    link_renewals_per_address: int = Field(default=3, ge=1)
    link_reading_per_client: int = Field(default=30, ge=1)

    def retired_audit_keys(self) -> list[str]:
        """The keyring's keys; an id that is not its key's own is refused, as a sign of a mistyped key."""
        keys = []
        for item in filter(None, (part.strip() for part in self.audit_keyring.split(","))):
            given, sep, key = item.partition(":")
            if not sep:
                given, key = "", item
            if given and hashlib.sha256(key.encode("utf-8")).hexdigest()[:8] != given:
                raise ValueError(
                    f"DISPUTES_AUDIT_KEYRING: the key given for id {given} does not have that id"
                )
            keys.append(key)
        return keys

    @cached_property
    def loaded_policy(self) -> Policy:
        """The policy file, validated once; its errors name the key at fault."""
        if self.policy is None:
            return load_default_policy()
        return parse_policy(self.policy.read_text(encoding="utf-8"))


# Anyone who knows a secret can forge what it protects; one this long cannot be guessed.
MIN_SECRET_BYTES = 32
MAKE_A_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


class UnsafeSettings(Exception):
    """A strict start refused: every setting at fault is named at once, so one restart fixes them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("unsafe settings:\n" + "\n".join(f"- {problem}" for problem in problems))


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) never leaves this machine."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def jwks_problems(settings: Settings) -> list[str]:
    """Without both, any token the identity provider signs (for another application, or another tenant of a
    shared provider such as Entra ID) would be accepted."""
    if not settings.jwks_url:
        return []
    return [
        f"{name} is required when DISPUTES_JWKS_URL is set: without it, a token the identity provider "
        "issued to another application or tenant would be accepted"
        for name, value in (
            ("DISPUTES_JWT_ISSUER", settings.jwt_issuer),
            ("DISPUTES_JWT_AUDIENCE", settings.jwt_audience),
        )
        if not value
    ]


def unsafe_settings(settings: Settings) -> list[str]:
    """What a strict (non-demo) server refuses to start with, one sentence per setting at fault.

    Command-line tools never call this: each needs only the settings it uses.
    """
    problems: list[str] = []

    def secret(name: str, value: str, use: str) -> None:
        if value == DEV_SECRET:
            problems.append(
                f"{name} is not set (the development value is in use); it is {use}. "
                f"Make one with: {MAKE_A_SECRET}"
            )
        elif len(value.encode()) < MIN_SECRET_BYTES:
            problems.append(
                f"{name} is {len(value.encode())} bytes; it is {use} and needs at least {MIN_SECRET_BYTES}. "
                f"Make one with: {MAKE_A_SECRET}"
            )

    if settings.jwks_url:
        problems.extend(jwks_problems(settings))
    else:
        secret("DISPUTES_JWT_SECRET", settings.jwt_secret, "the key that signs API tokens (HS256)")
    secret("DISPUTES_LINK_SECRET", settings.link_secret, "the key that hashes email link tokens")
    secret("DISPUTES_AUDIT_KEY", settings.audit_key, "the key of the audit log's hashes")

    oidc = {
        "DISPUTES_OIDC_ISSUER": settings.oidc_issuer,
        "DISPUTES_OIDC_CLIENT_ID": settings.oidc_client_id,
        "DISPUTES_OIDC_CLIENT_SECRET": settings.oidc_client_secret,
    }
    if any(oidc.values()):
        missing = [name for name, value in oidc.items() if not value]
        if missing:
            problems.append(
                f"{', '.join(missing)} not set: sign-in to the pages needs the issuer, client id and client "
                "secret together (or none of them, for the API alone)"
            )
        secret("DISPUTES_SESSION_SECRET", settings.session_secret, "the key that signs session cookies")
        issuer = urlsplit(settings.oidc_issuer or "")
        if settings.oidc_issuer and not (
            issuer.scheme == "https" or (issuer.scheme == "http" and is_loopback(issuer.hostname or ""))
        ):
            problems.append(
                f"DISPUTES_OIDC_ISSUER {settings.oidc_issuer} must start with https:// (plain http is only "
                "for a provider on this machine)"
            )

    if settings.smtp_starttls and settings.smtp_tls:
        problems.append(
            "DISPUTES_SMTP_STARTTLS and DISPUTES_SMTP_TLS are both true: set one, STARTTLS "
            "(usually port 587) or implicit TLS (usually port 465)"
        )
    elif not (settings.smtp_starttls or settings.smtp_tls) and not is_loopback(settings.smtp_host):
        problems.append(
            f"DISPUTES_SMTP_HOST {settings.smtp_host} is not on this machine, so mail (and the SMTP "
            "password) must be encrypted: set DISPUTES_SMTP_STARTTLS=true (usually port 587) or "
            "DISPUTES_SMTP_TLS=true (implicit TLS, usually port 465)"
        )

    url = urlsplit(settings.public_base_url)
    if not url.hostname:
        problems.append(
            f"DISPUTES_PUBLIC_BASE_URL {settings.public_base_url!r} has no host; give the https address "
            "people reach the service at"
        )
    elif url.scheme != "https" and not (url.scheme == "http" and is_loopback(url.hostname)):
        problems.append(
            f"DISPUTES_PUBLIC_BASE_URL {settings.public_base_url} must start with https:// (email links "
            "carry one-use tokens); plain http is only for a host on this machine"
        )
    return problems


def sign_in_configured(settings: Settings) -> bool:
    """Whether the pages can sign anyone in by OpenID Connect."""
    return bool(settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret)
