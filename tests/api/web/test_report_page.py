"""The annual report's page: the same figures and sentences as the API's JSON, its CSV and SVG through the
session (and never without it), and a 403 page for those the report is not for."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import Mode, create_app
from api.deps import snapshot_transaction, transaction
from api.web.routes import report as report_routes
from api.web.signin import SESSION_COOKIE
from dispute_service.config import Settings
from dispute_service.transactions import annual_report
from states.policy import Policy
from tests.factories import (
    AD_EMAIL,
    ADMIN_EMAIL,
    HOS_EMAIL,
    IRO_EMAIL,
    IRO_MANAGER_EMAIL,
    TM_EMAIL,
    FakeClock,
)
from tests.pages import error_summary, inline_error, table_rows
from tests.report_checks import assert_csv_matches, assert_svg_bars
from tests.seed import Ladder, seed_years

SignIn = Callable[[str], str]
Tokens = Callable[[str], dict[str, str]]
PAGE = "/reports/annual"


@pytest.fixture
def seeded(pages: TestClient, sessions: sessionmaker[Session], policy: Policy) -> None:
    seed_years(Ladder(sessions, policy))


def _numbers(cells: list[str]) -> list[int]:
    return [int(c.replace(",", "")) for c in cells]


def test_the_page_shows_the_apis_figures_and_sentences_for_the_year(
    seeded: None, pages: TestClient, sign_in: SignIn, token_for: Tokens
) -> None:
    sign_in(IRO_MANAGER_EMAIL)
    page = pages.get(PAGE, params={"year": 2017})
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    api = pages.get("/api/v1/reports/annual", params={"year": 2017}, headers=token_for(IRO_MANAGER_EMAIL))
    data: dict[str, Any] = api.json()
    html = page.text

    assert "<h1" in html and "Annual report 2017-18" in html
    assert "1 April 2017 to 31 March 2018" in html
    sentences = re.findall(r"<li>([^<]+)</li>", html[html.index('id="sentences"') :].split("</ul>")[0])
    assert [s.strip() for s in sentences] == data["sentences"]
    assert data["sentences"][0] in html

    # The chart's table: the two years by the highest stage, the same figures as the chart's bars.
    highest = table_rows(html, "highest-stage")
    assert highest[0] == ["Stage", "2016-17", "2017-18"]
    assert _numbers([row[2] for row in highest[1:]]) == list(data["highest_stage"].values())
    assert sum(_numbers([row[1] for row in highest[1:]])) == data["raised"]["previous_year"]

    headline = {row[0]: row[1] for row in table_rows(html, "headline")[1:]}
    assert headline["Disputes raised in 2017-18"] == str(data["raised"]["this_year"])
    assert headline["Disputes raised in 2016-17"] == str(data["raised"]["previous_year"])
    assert headline["Change from the previous year"] == f"{data['raised']['change']:+d}"
    assert headline["Escalations, automatic (a deadline passed)"] == str(data["escalations"]["automatic"])
    assert headline["Escalations, manual (by the IRO)"] == str(data["escalations"]["manual"])
    assert headline["Responses on time"] == str(data["responses"]["on_time"])
    assert headline["Responses late"] == str(data["responses"]["late"])
    assert headline["Referrals to CAFCASS"] == str(data["cafcass_referrals"])
    assert headline["Disputes withdrawn"] == str(data["withdrawn"])
    assert headline["Disputes open at the year's end"] == str(data["open_at_year_end"])
    median = data["median_working_days_to_close"]
    assert headline["Median working days from raise to close"] == f"{median:g}"

    for table_id, key in (
        ("resolved-at-stage", "resolved_at_stage"),
        ("by-case-type", "by_case_type"),
        ("by-category", "by_category"),
    ):
        rows = table_rows(html, table_id)[1:]
        assert _numbers([row[1] for row in rows]) == list(data[key].values()), table_id
    assert table_rows(html, "by-case-type")[1][0] == "Looked After Children"

    # The chart is the session's SVG, described in words, and each table scrolls in a labelled region.
    assert '<img class="app-chart" id="chart" src="/reports/annual/chart.svg?year=2017"' in html
    assert re.search(r'alt="Bar chart of the disputes raised in 2016-17 and in 2017-18[^"]+"', html)
    for table_id in ("highest-stage", "headline", "resolved-at-stage", "by-case-type", "by-category"):
        assert (
            f'<div class="app-table-scroll" role="region" aria-labelledby="{table_id}-caption" tabindex="0">'
            in html
        )
        assert f'id="{table_id}-caption"' in html
    assert 'href="/reports/annual.csv?year=2017"' in html
    assert 'href="/reports/annual/chart.svg?year=2017"' in html
    assert "style=" not in html


@pytest.mark.parametrize("email", [IRO_MANAGER_EMAIL, ADMIN_EMAIL, HOS_EMAIL, AD_EMAIL])
def test_every_report_reader_sees_the_page(pages: TestClient, sign_in: SignIn, email: str) -> None:
    sign_in(email)
    page = pages.get(PAGE)
    assert page.status_code == 200
    assert 'href="/reports/annual" aria-current="true"' in page.text


def test_the_page_defaults_to_the_current_reporting_year(pages: TestClient, sign_in: SignIn) -> None:
    # The test clock says 8 January 2018: the reporting year 2017-18, which starts in April 2017.
    sign_in(IRO_MANAGER_EMAIL)
    page = pages.get(PAGE)
    assert page.status_code == 200
    assert "Annual report 2017-18" in page.text
    assert re.search(r'<input [^>]*name="year"[^>]*value="2017"', page.text)


@pytest.mark.parametrize(
    ("year", "message"),
    [
        ("twenty", "Enter the reporting year as a 4-digit number, like 2017"),
        ("2019", "Enter a reporting year from 1900 to 2017"),
        ("1066", "Enter a reporting year from 1900 to 2017"),
    ],
)
def test_a_year_that_cannot_be_used_is_shown_on_the_form(
    pages: TestClient, sign_in: SignIn, year: str, message: str
) -> None:
    sign_in(IRO_MANAGER_EMAIL)
    page = pages.get(PAGE, params={"year": year})
    assert page.status_code == 422
    assert error_summary(page.text) == [("#year", message)]
    assert inline_error(page.text, "year") == message
    assert f'value="{year}"' in page.text
    assert page.text.count("<title>Error: ") == 1


def test_the_csv_and_svg_come_with_the_session_and_match_the_report(
    seeded: None,
    pages: TestClient,
    sign_in: SignIn,
    sessions: sessionmaker[Session],
    policy: Policy,
) -> None:
    sign_in(ADMIN_EMAIL)
    expected = annual_report(sessions, policy, 2017)

    got = pages.get("/reports/annual.csv", params={"year": 2017})
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == 'attachment; filename="annual-report-2017-18.csv"'
    assert got.headers["cache-control"] == "no-store"
    assert_csv_matches(list(csv.DictReader(io.StringIO(got.text))), expected.to_dict())

    chart = pages.get("/reports/annual/chart.svg", params={"year": 2017})
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/svg+xml"
    assert chart.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert_svg_bars(chart.text, expected)


@pytest.mark.parametrize(
    "path", ["/reports/annual.csv?year=2017", "/reports/annual/chart.svg?year=2017", PAGE]
)
def test_without_a_session_the_downloads_go_to_sign_in(pages: TestClient, path: str) -> None:
    response = pages.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in?next=")


def test_the_apis_report_never_accepts_the_session_cookie(pages: TestClient, sign_in: SignIn) -> None:
    sign_in(ADMIN_EMAIL)
    assert pages.cookies.get(SESSION_COOKIE)
    response = pages.get("/api/v1/reports/annual", params={"year": 2017, "format": "csv"})
    assert response.status_code == 401


@pytest.mark.parametrize("email", [IRO_EMAIL, TM_EMAIL])
@pytest.mark.parametrize("path", [PAGE, "/reports/annual.csv?year=2017", "/reports/annual/chart.svg?year=x"])
def test_others_get_the_403_page(pages: TestClient, sign_in: SignIn, email: str, path: str) -> None:
    sign_in(email)
    response = pages.get(path)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "You cannot do this" in response.text
    assert "may not read the annual report" in response.text


def test_a_download_for_a_year_that_cannot_be_used_gets_the_422_page(
    pages: TestClient, sign_in: SignIn
) -> None:
    sign_in(IRO_MANAGER_EMAIL)
    response = pages.get("/reports/annual.csv", params={"year": "next"})
    assert response.status_code == 422
    assert "Enter the reporting year as a 4-digit number" in response.text


def test_the_menu_offers_the_report_to_its_readers_only(pages: TestClient, sign_in: SignIn) -> None:
    sign_in(IRO_EMAIL)
    assert 'href="/reports/annual"' not in pages.get("/").text
    sign_in(HOS_EMAIL)
    assert 'href="/reports/annual"' in pages.get("/").text


def _dependencies(dependant: Any) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _dependencies(sub)
    return found


@pytest.mark.parametrize("path", [PAGE, "/reports/annual.csv", "/reports/annual/chart.svg"])
def test_each_report_route_reads_in_one_snapshot_and_writes_nothing(path: str) -> None:
    # As the API's report: every query sees one moment. The session is read in that same transaction,
    # without the write a page view otherwise makes, so no second transaction is opened for it.
    route = next(r for r in report_routes.router.routes if isinstance(r, APIRoute) and r.path == path)
    calls = _dependencies(route.dependant)
    assert snapshot_transaction in calls
    assert transaction not in calls


def test_the_default_year_follows_the_reporting_years_start_month(
    pages: TestClient, sign_in: SignIn, page_settings: Settings, clock: FakeClock
) -> None:
    # A calendar reporting year: on 8 January 2018 the current one is 2018, labelled "2018".
    sign_in(IRO_MANAGER_EMAIL)
    settings = page_settings.model_copy(update={"report_year_start_month": 1})
    with TestClient(create_app(settings, mode=Mode.STRICT, clock=clock)) as calendar_years:
        calendar_years.cookies.set(SESSION_COOKIE, pages.cookies[SESSION_COOKIE])
        page = calendar_years.get(PAGE)
    assert page.status_code == 200
    assert "Annual report 2018" in page.text
    assert "1 January 2018 to 31 December 2018" in page.text
    assert re.search(r'<input [^>]*name="year"[^>]*value="2018"', page.text)
