from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
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
    environment: Literal["development", "production"] = "development"

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Settings:
        # The development secret is printed in the README; production must never accept tokens signed with it.
        if self.environment == "production" and DEV_SECRET in (self.jwt_secret, self.link_secret):
            raise ValueError("set DISPUTES_JWT_SECRET and DISPUTES_LINK_SECRET in production")
        return self

    @cached_property
    def loaded_policy(self) -> Policy:
        """The policy file, validated once; its errors name the key at fault."""
        if self.policy is None:
            return load_default_policy()
        return parse_policy(self.policy.read_text(encoding="utf-8"))
