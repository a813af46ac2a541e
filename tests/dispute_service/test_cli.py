"""`dispute-service`'s core commands, run in-process with Typer's CliRunner against a real database."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from dispute_service.cli import app
from dispute_service.models import Person, WebSession
from dispute_service.transactions import annual_report
from states.policy import Policy
from tests.report_checks import assert_csv_matches, assert_svg_bars, counts
from tests.seed import SEED_2016_ROWS, Ladder, at, row, seed_years, write

Invoke = Callable[..., Result]


@pytest.fixture
def run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    # No stray .env or DISPUTES_* variable from the developer's shell may leak into what the CLI reads.
    monkeypatch.chdir(tmp_path)
    env = {
        "DISPUTES_DATABASE_URL": db_url,
        "DISPUTES_POLICY": None,
        "DISPUTES_REPORT_YEAR_START_MONTH": None,
    }
    runner = CliRunner()

    def invoke(*args: str, extra: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), env={**env, **(extra or {})})

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


# --- report --------------------------------------------------------------------------------------------


def test_cli_report_in_each_format(
    ladder: Ladder, run: Invoke, sessions: sessionmaker[Session], policy: Policy
) -> None:
    seed_years(ladder)
    expected = annual_report(sessions, policy, 2017)

    as_json = run("report", "--year", "2017", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == expected.to_dict()

    as_csv = run("report", "--year", "2017", "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    assert_csv_matches(list(csv.DictReader(io.StringIO(as_csv.stdout))), expected.to_dict())

    as_svg = run("report", "--year", "2017", "--format", "svg")
    assert as_svg.exit_code == 0, as_svg.output
    assert_svg_bars(as_svg.stdout, expected)

    table = run("report", "--year", "2017")
    assert table.exit_code == 0, table.output
    assert "increased this year to 18 for Looked After Children" in " ".join(table.stdout.split())


def test_cli_report_refuses_an_unknown_format_and_a_missing_year(run: Invoke) -> None:
    bad = run("report", "--year", "2017", "--format", "xlsx")
    assert bad.exit_code == 2
    assert "table, json, csv, svg" in bad.output
    assert run("report").exit_code == 2


def test_cli_report_follows_the_start_month_setting(
    ladder: Ladder, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ladder.raise_(at(2017, 2, 1, 10))
    env = {"DISPUTES_DATABASE_URL": db_url, "DISPUTES_POLICY": None, "DISPUTES_REPORT_YEAR_START_MONTH": "1"}
    result = CliRunner().invoke(app, ["report", "--year", "2017", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["period"]["label"] == "2017"
    assert body["raised"]["this_year"] == 1


# --- import-history ------------------------------------------------------------------------------------


def test_cli_import_history_loads_the_file(
    run: Invoke, tmp_path: Path, sessions: sessionmaker[Session], staff: list[str]
) -> None:
    result = run("import-history", str(write(tmp_path, SEED_2016_ROWS)))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "9 dispute(s) imported"
    assert counts(sessions)[:3] == (9, 9 * 2, 9)


def test_cli_a_bad_import_names_the_line_and_loads_nothing(
    run: Invoke, tmp_path: Path, sessions: sessionmaker[Session], staff: list[str]
) -> None:
    path = write(
        tmp_path,
        [row("ESC-1"), row("ESC-2", highest_stage="director"), row("ESC-3", closed_on="2016-5-20")],
    )
    result = run("import-history", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "line 3: highest_stage 'director' is not a stage of the policy: quality_assurance, team_manager, "
        "head_of_corporate_parenting, head_of_service, assistant_director, cafcass",
        "line 4: closed_on '2016-5-20' is not a date in the form YYYY-MM-DD",
        "nothing was imported",
    ]
    assert counts(sessions) == (0, 0, 0, 0)


def test_cli_a_large_import_still_loads(
    run: Invoke, tmp_path: Path, sessions: sessionmaker[Session], staff: list[str]
) -> None:
    rows = [row(f"ESC-{i}", raised_on="2017-05-01", closed_on="2017-05-15") for i in range(1_000)]
    result = run("import-history", str(write(tmp_path, rows)))
    assert result.exit_code == 0, result.output
    assert "1000 dispute(s) imported" in result.stdout
    assert counts(sessions)[0] == 1_000


# --- the settings each command needs -------------------------------------------------------------------

# --- purge-expired -------------------------------------------------------------------------------------


def test_purge_expired_deletes_what_has_been_over_for_a_day_and_prints_the_counts(
    run: Invoke, sessions: sessionmaker[Session]
) -> None:
    # The command reads the wall clock, as an operator's cron job would.
    now = datetime.now(UTC)
    with sessions.begin() as session:
        for name, ended in (
            ("live", None),
            ("signed_out_just_now", now),
            ("signed_out_2_days_ago", now - timedelta(days=2)),
        ):
            signed_in = (ended or now) - timedelta(hours=1)
            session.add(
                WebSession(
                    id=name,
                    email="iro@example.gov.uk",
                    csrf="c",
                    created_at=signed_in,
                    last_seen_at=ended or now,
                    ended_at=ended,
                )
            )
    result = run("purge-expired")
    assert result.exit_code == 0, result.output
    assert result.output == "1 web_sessions, 0 link_codes, 0 link_sessions, 0 idempotency_keys deleted\n"
    with sessions() as session:
        assert set(session.scalars(select(WebSession.id))) == {"live", "signed_out_just_now"}
    again = run("purge-expired")
    assert again.output == "0 web_sessions, 0 link_codes, 0 link_sessions, 0 idempotency_keys deleted\n"


# What a strict server refuses, every one; none of these commands uses them.
UNSAFE_SERVER_SETTINGS = {
    "DISPUTES_JWT_SECRET": "short",
    "DISPUTES_JWKS_URL": "https://login.example/keys",
    "DISPUTES_LINK_SECRET": "",
    "DISPUTES_SMTP_HOST": "mail.example.gov.uk",
    "DISPUTES_PUBLIC_BASE_URL": "http://disputes.example.gov.uk",
}


def test_the_tools_need_no_server_settings(
    run: Invoke, tmp_path: Path, sessions: sessionmaker[Session], staff: list[str]
) -> None:
    people = _write(tmp_path, "people.csv", "name,email,roles\nNew Person,new@example.gov.uk,iro\n")
    for args in (
        ["migrate"],
        ["people", "import", str(people)],
        ["import-history", str(write(tmp_path, SEED_2016_ROWS))],
        ["report", "--year", "2016", "--format", "json"],
        ["audit", "verify"],
        ["due", "2022-06-01T10:00", "5wd"],
        ["purge-expired"],
    ):
        result = run(*args, extra=UNSAFE_SERVER_SETTINGS)
        assert result.exit_code == 0, (args, result.output)
