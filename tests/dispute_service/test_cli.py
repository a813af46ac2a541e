"""`dispute-service` (SPEC section 5, CLI), run in-process with Typer's CliRunner against a real database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from api.cli import app
from dispute_service.models import Person

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


def _people(sessions: sessionmaker[Session]) -> dict[str, Person]:
    with sessions() as session:
        return {p.email: p for p in session.scalars(select(Person)).all()}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- people import -------------------------------------------------------------------------------------


def test_people_import_loads_the_csv(run: Invoke, tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    csv = _write(
        tmp_path,
        "staff.csv",
        "name,email,roles\n"
        "Ima Reviewer,IRO@Example.gov.uk,iro\n"
        "Tara Manager,tm@example.gov.uk,team_manager;iro_manager\n"
        "Adam Admin,admin@example.gov.uk, admin ; iro \n",
    )
    result = run("people", "import", str(csv))
    assert result.exit_code == 0, result.output
    assert "3 added, 0 updated" in result.output

    people = _people(sessions)
    assert set(people) == {"iro@example.gov.uk", "tm@example.gov.uk", "admin@example.gov.uk"}
    assert people["iro@example.gov.uk"].roles == ["iro"]
    assert people["iro@example.gov.uk"].name == "Ima Reviewer"
    assert people["tm@example.gov.uk"].roles == ["iro_manager", "team_manager"]
    assert people["admin@example.gov.uk"].roles == ["admin", "iro"]
    assert all(p.active for p in people.values())


def test_people_import_again_updates_in_place(
    run: Invoke, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    first = _write(tmp_path, "a.csv", "name,email,roles\nIma Reviewer,iro@example.gov.uk,iro\n")
    assert run("people", "import", str(first)).exit_code == 0
    second = _write(
        tmp_path,
        "b.csv",
        "name,email,roles\n"
        "Ima Renamed,iro@example.gov.uk,iro;iro_manager\n"
        "New Person,new@example.gov.uk,admin\n",
    )
    result = run("people", "import", str(second))
    assert result.exit_code == 0, result.output
    assert "1 added, 1 updated" in result.output
    people = _people(sessions)
    assert people["iro@example.gov.uk"].name == "Ima Renamed"
    assert people["iro@example.gov.uk"].roles == ["iro", "iro_manager"]
    assert len(people) == 2


def test_bad_csv_names_the_line_and_loads_nothing(
    run: Invoke, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    csv = _write(
        tmp_path,
        "bad.csv",
        "name,email,roles\n"
        "Ima Reviewer,iro@example.gov.uk,iro\n"  # line 2: fine
        "Wiz Ard,wiz@example.gov.uk,iro;wizard\n"  # line 3: an unknown role
        "Tara Manager,tm@example.gov.uk,team_manager\n",  # line 4: fine
    )
    result = run("people", "import", str(csv))
    assert result.exit_code != 0
    assert "line 3" in result.output
    assert "line 2" not in result.output and "line 4" not in result.output
    assert "nothing was imported" in result.output
    assert _people(sessions) == {}


def test_csv_without_the_roles_column_is_refused(
    run: Invoke, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    csv = _write(tmp_path, "cols.csv", "name,email\nIma Reviewer,iro@example.gov.uk\n")
    result = run("people", "import", str(csv))
    assert result.exit_code != 0
    assert "roles" in result.output
    assert _people(sessions) == {}


def test_people_import_of_a_missing_file_fails(run: Invoke, tmp_path: Path) -> None:
    result = run("people", "import", str(tmp_path / "absent.csv"))
    assert result.exit_code != 0
    assert "absent.csv" in result.output


# --- token ---------------------------------------------------------------------------------------------


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


# --- due -----------------------------------------------------------------------------------------------


def test_due_explains_the_jubilee_week(run: Invoke) -> None:
    result = run("due", "2022-06-01T10:00", "5wd")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "due:        17:00 Friday 10 June 2022" in lines
    assert "escalation: 09:00 Monday 13 June 2022" in lines

    def line_for(day: str) -> str:
        found = [line for line in lines if day in line]
        assert len(found) == 1, (day, result.stdout)
        return found[0].lower()

    assert "bank holiday" in line_for("Thursday 2 June 2022")
    assert "bank holiday" in line_for("Friday 3 June 2022")
    assert "weekend" in line_for("Saturday 4 June 2022")
    assert "weekend" in line_for("Sunday 5 June 2022")
    # Working days are not listed as skipped.
    assert not [line for line in lines if "Monday 6 June 2022" in line]


def test_due_with_a_duration_ignores_working_days(run: Invoke) -> None:
    result = run("due", "2022-06-03T10:00", "PT30S")
    assert result.exit_code == 0, result.output
    assert "due:        10:00:30 Friday 3 June 2022" in result.stdout.splitlines()


@pytest.mark.parametrize("timescale", ["5days", "5", "P1M", "-5wd", ""])
def test_due_with_a_bad_timescale_says_what_is_allowed(run: Invoke, timescale: str) -> None:
    # "--" so that "-5wd" reaches the command rather than being read as an option.
    result = run("due", "--", "2022-06-01T10:00", timescale)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if timescale != "-5wd":
        assert "5wd" in result.output and "PT30S" in result.output
    else:
        assert "negative" in result.output


def test_due_with_a_bad_start_fails_cleanly(run: Invoke) -> None:
    result = run("due", "first of June", "5wd")
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "first of June" in result.output


# --- migrate -------------------------------------------------------------------------------------------


def test_migrate_on_a_migrated_database_is_a_no_op(run: Invoke, sessions: sessionmaker[Session]) -> None:
    result = run("migrate")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    again = run("migrate")
    assert again.exit_code == 0, again.output
    # The schema still works.
    assert _people(sessions) == {}
