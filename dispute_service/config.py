from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

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
    mail_from: str = "disputes@localhost"
    public_base_url: str = "http://localhost:8000"
    link_secret: str = DEV_SECRET
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

    @cached_property
    def loaded_policy(self) -> Policy:
        """The policy file, validated once; its errors name the key at fault."""
        if self.policy is None:
            return load_default_policy()
        return parse_policy(self.policy.read_text(encoding="utf-8"))
