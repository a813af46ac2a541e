"""The app factory: the mode is chosen by every caller, a strict app refuses unsafe settings before anything
connects, and the API docs can be switched off."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs
from typer.testing import CliRunner

from api.app import Mode, create_app
from api.cli import app as cli
from dispute_service.config import DEV_SECRET, MAKE_A_SECRET, Settings, UnsafeSettings
from tests.factories import IRO_EMAIL, post_dispute

DOCS = ("/docs", "/redoc", "/openapi.json")


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


def test_the_api_docs_are_served_by_default(settings: Settings) -> None:
    client = TestClient(create_app(settings, mode=Mode.STRICT))
    for path in DOCS:
        assert client.get(path).status_code == 200, path


def test_the_api_docs_can_be_switched_off(settings: Settings) -> None:
    hidden = settings.model_copy(update={"api_docs": False})
    with TestClient(create_app(hidden, mode=Mode.STRICT)) as client:
        for path in DOCS:
            response = client.get(path)
            assert response.status_code == 404, path
            assert "swagger" not in response.text.lower() and "openapi" not in response.text.lower()
        # The API itself is unaffected.
        assert client.get("/api/v1/disputes").status_code == 401


def test_the_checkpoint_logged_at_shutdown_is_the_one_audit_checkpoint_prints_and_it_verifies(
    settings: Settings,
    clock: Any,
    staff: list[str],
    token_for: Callable[[str], dict[str, str]],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with capture_logs() as logs:
        with TestClient(create_app(settings, mode=Mode.STRICT, clock=clock)) as client:
            post_dispute(client.post, token_for(IRO_EMAIL))
            post_dispute(client.post, token_for(IRO_EMAIL), child_ref="LCS-2")
    [logged] = [e for e in logs if e["event"] == "audit.checkpoint"]
    assert logged["gseq"] == 2

    monkeypatch.chdir(tmp_path)  # no stray .env may reach the commands
    env = {"DISPUTES_DATABASE_URL": db_url, "DISPUTES_AUDIT_KEY": settings.audit_key}
    printed = json.loads(CliRunner().invoke(cli, ["audit", "checkpoint"], env=env).output)
    assert (printed["gseq"], printed["hash"]) == (logged["gseq"], logged["hash"])
    checked = CliRunner().invoke(
        cli, ["audit", "verify", "--checkpoint", f"{logged['gseq']}:{logged['hash']}"], env=env
    )
    assert checked.exit_code == 0, checked.output
