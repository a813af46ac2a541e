"""`dispute-service token`, the command the API adds to the core's, run in-process with Typer's CliRunner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner, Result

from api.cli import app

Invoke = Callable[..., Result]
SECRET = "cli-test-secret-0123456789abcdef0123456789"


@pytest.fixture
def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    # No stray .env or DISPUTES_* variable from the developer's shell may leak into what the CLI reads.
    monkeypatch.chdir(tmp_path)
    env = {
        "DISPUTES_DATABASE_URL": db_url,
        "DISPUTES_JWT_SECRET": SECRET,
        "DISPUTES_JWT_ISSUER": None,
        "DISPUTES_JWT_AUDIENCE": None,
        "DISPUTES_JWT_EMAIL_CLAIM": None,
        "DISPUTES_POLICY": None,
        "DISPUTES_ENVIRONMENT": None,
    }
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return invoke


def test_token_prints_a_jwt_for_the_email_as_its_last_word(run: Invoke) -> None:
    before = datetime.now(UTC).timestamp()
    result = run("token", "IRO@example.gov.uk")
    assert result.exit_code == 0, result.output
    token = result.stdout.split()[-1]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["email"] == "iro@example.gov.uk"
    assert claims["exp"] > before
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "some-other-secret-0123456789abcdef01234567", algorithms=["HS256"])


def test_token_hours_sets_the_expiry(run: Invoke) -> None:
    result = run("token", "iro@example.gov.uk", "--hours", "1")
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.split()[-1], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600
