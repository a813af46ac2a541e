"""The app factory: the mode is chosen by every caller, and a strict app refuses unsafe settings before
anything connects."""

from __future__ import annotations

import inspect

import pytest
from fastapi.testclient import TestClient

from api.app import Mode, create_app
from dispute_service.config import DEV_SECRET, MAKE_A_SECRET, Settings, UnsafeSettings


def test_the_mode_has_no_default() -> None:
    # A forgotten argument must not quietly pick one: every caller says which it means.
    parameter = inspect.signature(create_app).parameters["mode"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is inspect.Parameter.empty
    with pytest.raises(TypeError):
        create_app(Settings(_env_file=None))  # type: ignore[call-arg]


def test_strict_refuses_the_development_settings_naming_every_one() -> None:
    lax = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(UnsafeSettings) as refused:
        create_app(lax, mode=Mode.STRICT)
    problems = refused.value.problems
    assert [p.split()[0] for p in problems] == [
        "DISPUTES_JWT_SECRET",
        "DISPUTES_LINK_SECRET",
        "DISPUTES_AUDIT_KEY",
    ]
    assert all(MAKE_A_SECRET in p for p in problems)
    assert "DISPUTES_AUDIT_KEY" in str(refused.value)


def test_demo_accepts_the_development_settings() -> None:
    lax = Settings(_env_file=None)  # type: ignore[call-arg]
    assert lax.jwt_secret == DEV_SECRET
    app = create_app(lax, mode=Mode.DEMO)
    assert app.state.mode is Mode.DEMO


def test_strict_starts_with_safe_settings(settings: Settings) -> None:
    with TestClient(create_app(settings, mode=Mode.STRICT)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.app.state.mode is Mode.STRICT  # type: ignore[attr-defined]
