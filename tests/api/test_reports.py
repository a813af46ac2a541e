"""GET /api/v1/reports/annual over HTTP: for managers only, as JSON, CSV or SVG, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.transactions import annual_report
from states.policy import Policy
from tests.factories import (
    AD_EMAIL,
    ADMIN_EMAIL,
    HOCP_EMAIL,
    HOS_EMAIL,
    IRO_EMAIL,
    IRO_MANAGER_EMAIL,
    TM_EMAIL,
)
from tests.report_checks import STAGES, assert_csv_matches, assert_svg_bars
from tests.seed import Ladder, seed_years

Tokens = Callable[[str], dict[str, str]]
URL = "/api/v1/reports/annual"
PROBLEM = "application/problem+json"
READERS = [IRO_MANAGER_EMAIL, ADMIN_EMAIL, HOS_EMAIL, AD_EMAIL]
OTHERS = [IRO_EMAIL, TM_EMAIL, HOCP_EMAIL]


@pytest.fixture
def seeded(client: TestClient, sessions: sessionmaker[Session], policy: Policy) -> None:
    seed_years(Ladder(sessions, policy))


@pytest.mark.parametrize("email", READERS)
def test_managers_read_the_report_as_json(
    seeded: None,
    client: TestClient,
    token_for: Tokens,
    email: str,
    sessions: sessionmaker[Session],
    policy: Policy,
) -> None:
    response = client.get(URL, params={"year": 2017}, headers=token_for(email))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == annual_report(sessions, policy, 2017).to_dict()
    assert body["raised"] == {"this_year": 18, "previous_year": 9, "change": 9}
    assert body["sentences"][0] == (
        "The number of escalations has increased this year to 18 for Looked After Children "
        "from 9 the previous year."
    )
    assert list(body) == [
        "period",
        "raised",
        "by_case_type",
        "by_category",
        "highest_stage",
        "resolved_at_stage",
        "escalations",
        "responses",
        "cafcass_referrals",
        "withdrawn",
        "open_at_year_end",
        "median_working_days_to_close",
        "by_ladder",
        "by_organisation",
        "sentences",
    ]
    # The seed year is all on the council's own ladder: the partner ladders are there, at zero.
    zero = {"raised": 0, "escalations": 0, "resolved": 0, "open": 0}
    assert list(body["by_ladder"]) == ["own", "health", "other_authority"]
    assert body["by_ladder"]["own"]["raised"] == 18
    assert body["by_ladder"]["health"] == body["by_ladder"]["other_authority"] == zero
    assert body["by_organisation"] == {}


@pytest.mark.parametrize("email", OTHERS)
def test_everyone_else_is_refused_with_403_before_any_422(
    client: TestClient, token_for: Tokens, email: str
) -> None:
    for params in ({"year": 2017}, {"year": "twenty"}, {}):
        response = client.get(URL, params=params, headers=token_for(email))
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["type"] == "/problems/forbidden"
        assert body["detail"] == (
            f"{email} may not read the annual report; it is for the roles iro_manager, admin, "
            "head_of_service, assistant_director"
        )


def test_no_token_or_a_bad_one_gets_401(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer rubbish"}):
        response = client.get(URL, params={"year": 2017}, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "year"),
        ({"year": "twenty"}, "year"),
        ({"year": 1899}, "year"),
        ({"year": 9999}, "year"),
        ({"year": 2017, "format": "xlsx"}, "format"),
    ],
)
def test_bad_queries_get_422_naming_the_field(
    client: TestClient, token_for: Tokens, params: dict[str, Any], field: str
) -> None:
    response = client.get(URL, params=params, headers=token_for("admin@example.gov.uk"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_csv_parses_back_to_the_same_numbers(seeded: None, client: TestClient, token_for: Tokens) -> None:
    headers = token_for("iro.manager@example.gov.uk")
    as_json = client.get(URL, params={"year": 2017}, headers=headers).json()
    response = client.get(URL, params={"year": 2017, "format": "csv"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="annual-report-2017-18.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert_csv_matches(rows, as_json)
    by_key = {(r["measure"], r["breakdown"]): r["value"] for r in rows}
    assert by_key[("raised", "this_year")] == "18"
    assert by_key[("raised", "previous_year")] == "9"
    assert by_key[("highest_stage", "team_manager")] == "11"


def test_svg_is_valid_xml_with_one_bar_per_stage_per_year(
    seeded: None, client: TestClient, token_for: Tokens, sessions: sessionmaker[Session], policy: Policy
) -> None:
    response = client.get(URL, params={"year": 2017, "format": "svg"}, headers=token_for("ad@example.gov.uk"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert_svg_bars(response.text, annual_report(sessions, policy, 2017))
    for stage in STAGES:
        assert f'id="bar-2016-17-{stage}"' in response.text
        assert f'id="bar-2017-18-{stage}"' in response.text


def test_the_report_counts_disputes_raised_and_moved_over_the_api(
    client: TestClient, token_for: Tokens, raise_dispute: Callable[..., dict[str, Any]], clock: Any
) -> None:
    iro = token_for("iro@example.gov.uk")
    clock.now = datetime(2018, 3, 31, 22, 30, tzinfo=UTC)  # 23:30 BST: the last minutes of 2017-18
    first = raise_dispute()
    clock.now = datetime(2018, 3, 31, 23, 30, tzinfo=UTC)  # 00:30 BST on 1 April: 2018-19
    raise_dispute(case_type="care_leaver", categories=["independent_living"])
    moved = client.post(
        f"/api/v1/disputes/{first['id']}/actions/escalate",
        json={"reason": "No answer", "expected_version": first["version"]},
        headers=iro,
    )
    assert moved.status_code == 200, moved.text
    manager = token_for("iro.manager@example.gov.uk")
    before = client.get(URL, params={"year": 2017}, headers=manager).json()
    after = client.get(URL, params={"year": 2018}, headers=manager).json()
    assert before["raised"] == {"this_year": 1, "previous_year": 0, "change": 1}
    assert before["highest_stage"]["quality_assurance"] == 1
    assert before["escalations"] == {"automatic": 0, "manual": 0}
    assert before["open_at_year_end"] == 1
    assert after["raised"] == {"this_year": 1, "previous_year": 1, "change": 0}
    assert after["by_case_type"]["care_leaver"] == 1
    assert after["by_category"]["independent_living"] == 1
    assert after["escalations"] == {"automatic": 0, "manual": 1}
    assert after["open_at_year_end"] == 2


def test_the_openapi_document_declares_every_status_and_format(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"][URL]["get"]
    assert set(op["responses"]) == {"200", "401", "403", "422"}
    assert set(op["responses"]["200"]["content"]) == {"application/json", "text/csv", "image/svg+xml"}
    for status in ("401", "403", "422"):
        assert set(op["responses"][status]["content"]) == {PROBLEM}
    params = {p["name"]: p for p in op["parameters"]}
    assert params["year"]["required"] is True
    assert params["format"]["schema"]["enum"] == ["json", "csv", "svg"]
    assert op["summary"]
