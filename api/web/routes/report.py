"""The annual report's page (SPEC sections 7 and 9): a year picker, the report's sentences, its chart beside a
table of the same figures, the other breakdowns as tables, and the CSV and SVG to download, all read through
the session, in one read snapshot as the API reads it."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import NowDep, PolicyDep, SettingsDep, SnapshotTransactionDep, Transaction
from api.web.errors import error_page
from api.web.render import render
from api.web.signin import SnapshotViewerDep
from dispute_service.access import Actor, require_report_reader
from dispute_service.stages import calendar_for
from states.policy import Policy

if TYPE_CHECKING:
    from dispute_service.report.annual import AnnualReport

router = APIRouter(include_in_schema=False)

PAGE = "/reports/annual"
CSV_PATH = "/reports/annual.csv"
SVG_PATH = "/reports/annual/chart.svg"
EARLIEST_YEAR = 1900

# Long enough for any year a person types, short enough that nothing else is read.
YearQuery = Annotated[str | None, Query(max_length=20)]


async def report_reader(viewer: SnapshotViewerDep) -> Actor:
    # A dependency, so the 403 comes before anything about the year.
    require_report_reader(viewer)
    return viewer


ReaderDep = Annotated[Actor, Depends(report_reader)]


# ------------------------------------------------------------------------------------------- the year


def current_year(now: datetime, start_month: int, tz: tzinfo) -> int:
    """The reporting year `now` is in, by the year it starts in, on the policy's (London) calendar."""
    today = now.astimezone(tz).date()
    return today.year if today.month >= start_month else today.year - 1


def _day(d: date) -> str:
    return f"{d.day} {calendar.month_name[d.month]} {d.year}"


def year_span(year: int, start_month: int) -> str:
    """ "1 April 2017 to 31 March 2018"."""
    first = date(year, start_month, 1)
    last = date(year + 1, start_month, 1) - timedelta(days=1)
    return f"{_day(first)} to {_day(last)}"


def parse_year(text: str | None, latest: int) -> tuple[int | None, str | None]:
    """(the year, None), or (None, what is wrong with it, worded for the person who typed it)."""
    if text is None or not text.strip():
        return latest, None
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        return None, "Enter the reporting year as a 4-digit number, like 2017"
    year = int(text)
    if not EARLIEST_YEAR <= year <= latest:
        return None, f"Enter a reporting year from {EARLIEST_YEAR} to {latest}"
    return year, None


# ------------------------------------------------------------------------------------------- the figures


@dataclass(frozen=True)
class Column:
    text: str
    numeric: bool = False


@dataclass(frozen=True)
class Table:
    """A table of figures: its first cell in each row is the row's header."""

    id: str
    caption: str
    head: list[Column]
    rows: list[list[str]] = field(default_factory=list)


def _n(value: int) -> str:
    return f"{value:,}"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def figure_tables(report: AnnualReport) -> dict[str, Table]:
    """Every figure of the report's JSON, as tables: the same numbers, in the same order, with names."""
    from dispute_service.report.annual import CASE_TYPE_NAMES

    data = report.to_dict()
    label, previous = report.year.label, report.previous_label
    title = report.stage_titles

    median = data["median_working_days_to_close"]
    change = data["raised"]["change"]
    headline = Table(
        "headline",
        f"Headline figures, {label}",
        [Column("Measure"), Column("Figure", numeric=True)],
        [
            [f"Disputes raised in {label}", _n(data["raised"]["this_year"])],
            [f"Disputes raised in {previous}", _n(data["raised"]["previous_year"])],
            ["Change from the previous year", f"{change:+,}" if change else "0"],
            ["Escalations, automatic (a deadline passed)", _n(data["escalations"]["automatic"])],
            ["Escalations, manual (by the IRO)", _n(data["escalations"]["manual"])],
            ["Responses on time", _n(data["responses"]["on_time"])],
            ["Responses late", _n(data["responses"]["late"])],
            ["Referrals to CAFCASS", _n(data["cafcass_referrals"])],
            ["Disputes withdrawn", _n(data["withdrawn"])],
            ["Disputes open at the year's end", _n(data["open_at_year_end"])],
            [
                "Median working days from raise to close",
                "None closed" if median is None else f"{median:g}",
            ],
        ],
    )
    before = report.highest_stage(report.previous_year)
    highest = Table(
        "highest-stage",
        "Disputes raised, by the highest stage reached",
        [Column("Stage"), Column(previous, numeric=True), Column(label, numeric=True)],
        [[title.get(s, s), _n(before.get(s, 0)), _n(n)] for s, n in data["highest_stage"].items()],
    )
    resolved = Table(
        "resolved-at-stage",
        f"Disputes raised in {label} and resolved, by the stage they were resolved at",
        [Column("Stage"), Column("Resolved", numeric=True)],
        [[title.get(s, s), _n(n)] for s, n in data["resolved_at_stage"].items()],
    )
    by_case_type = Table(
        "by-case-type",
        f"Disputes raised in {label}, by case type",
        [Column("Case type"), Column("Disputes raised", numeric=True)],
        [
            [_capitalised(CASE_TYPE_NAMES.get(ct, ct.replace("_", " "))), _n(n)]
            for ct, n in data["by_case_type"].items()
        ],
    )
    by_category = Table(
        "by-category",
        f"Disputes raised in {label}, by concern category (a dispute may have more than one)",
        [Column("Concern"), Column("Disputes raised", numeric=True)],
        [[_capitalised(c.replace("_", " ")), _n(n)] for c, n in data["by_category"].items()],
    )
    figures = [
        Column("Disputes raised", numeric=True),
        Column("Escalations", numeric=True),
        Column("Resolved", numeric=True),
        Column("Open at the year's end", numeric=True),
    ]
    by_ladder = Table(
        "by-ladder",
        f"Disputes by ladder, {label}: raised, escalated and resolved in the year, and open at its end",
        [Column("Ladder"), *figures],
        [
            [report.ladder_titles.get(ladder, ladder), *(_n(n) for n in f.values())]
            for ladder, f in data["by_ladder"].items()
        ],
    )
    # Only the organisations with a figure in the year: none in a year on the council's own ladder alone,
    # and then the page leaves the table out.
    by_organisation = Table(
        "by-organisation",
        f"Disputes with partner agencies and other local authorities, {label}, by organisation",
        [Column("Organisation"), *figures],
        [
            [report.organisation_names.get(org, org), *(_n(n) for n in f.values())]
            for org, f in data["by_organisation"].items()
        ],
    )
    tables = (headline, highest, resolved, by_case_type, by_category, by_ladder, by_organisation)
    return {t.id: t for t in tables}


def chart_alt(report: AnnualReport) -> str:
    return (
        f"Bar chart of the disputes raised in {report.previous_label} and in {report.year.label}, by the "
        "highest stage each reached. The same figures are in the table "
        "'Disputes raised, by the highest stage reached'."
    )


# ------------------------------------------------------------------------------------------- the routes


async def _report(
    tx: Transaction, policy: Policy, year: int, start_month: int, reader: Actor
) -> AnnualReport:
    # Imported by the first report, not at start-up, as the API's route does.
    from dispute_service.report.annual import annual_report

    return await tx.finish(annual_report, policy, year, start_month=start_month, reader=reader)


def _year_or_refusal(
    request: Request, text: str | None, now: datetime, start_month: int, policy: Policy
) -> int | HTMLResponse:
    """The year a download asks for, or the page that says what is wrong with it."""
    latest = current_year(now, start_month, calendar_for(policy.calendar).tz)
    year, problem = parse_year(text, latest)
    if year is None:
        return error_page(request, 422, problem)
    return year


@router.get(PAGE)
async def annual_report_page(
    request: Request,
    reader: ReaderDep,
    tx: SnapshotTransactionDep,
    policy: PolicyDep,
    settings: SettingsDep,
    now: NowDep,
    year: YearQuery = None,
) -> HTMLResponse:
    start_month = settings.report_year_start_month
    latest = current_year(now, start_month, calendar_for(policy.calendar).tz)
    chosen, problem = parse_year(year, latest)
    common: dict[str, Any] = {
        "nav": "report",
        "example": f"For example, {latest} for the year from {year_span(latest, start_month)}",
    }
    if chosen is None:
        return render(
            request,
            "web/report.html",
            422,
            title="Annual report",
            year_text=year,
            errors=[{"text": problem, "href": "#year"}],
            **common,
        )
    report = await _report(tx, policy, chosen, start_month, reader)
    return render(
        request,
        "web/report.html",
        title=f"Annual report {report.year.label}",
        year_text=str(chosen),
        label=report.year.label,
        previous_label=report.previous_label,
        span=year_span(chosen, start_month),
        sentences=report.to_dict()["sentences"],
        tables=figure_tables(report),
        chart_src=f"{SVG_PATH}?year={chosen}",
        chart_alt=chart_alt(report),
        csv_href=f"{CSV_PATH}?year={chosen}",
        svg_href=f"{SVG_PATH}?year={chosen}",
        svg_name=f"annual-report-{report.year.label}.svg",
        private=True,
        **common,
    )


def _file_headers(disposition: str | None = None) -> dict[str, str]:
    """What a download sends: kept by no cache and, opened on its own, allowed to load and run nothing.
    (nosniff, the referrer policy and HSTS come with every answer on a page's path: api.web.headers.)"""
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    }
    if disposition:
        headers["Content-Disposition"] = disposition
    return headers


@router.get(CSV_PATH)
async def annual_report_csv(
    request: Request,
    reader: ReaderDep,
    tx: SnapshotTransactionDep,
    policy: PolicyDep,
    settings: SettingsDep,
    now: NowDep,
    year: YearQuery = None,
) -> Response:
    chosen = _year_or_refusal(request, year, now, settings.report_year_start_month, policy)
    if isinstance(chosen, Response):
        return chosen
    from dispute_service.report.formats import to_csv

    report = await _report(tx, policy, chosen, settings.report_year_start_month, reader)
    return Response(
        to_csv(report),
        media_type="text/csv",
        headers=_file_headers(f'attachment; filename="annual-report-{report.year.label}.csv"'),
    )


@router.get(SVG_PATH)
async def annual_report_chart(
    request: Request,
    reader: ReaderDep,
    tx: SnapshotTransactionDep,
    policy: PolicyDep,
    settings: SettingsDep,
    now: NowDep,
    year: YearQuery = None,
) -> Response:
    chosen = _year_or_refusal(request, year, now, settings.report_year_start_month, policy)
    if isinstance(chosen, Response):
        return chosen
    from dispute_service.report.formats import to_svg

    report = await _report(tx, policy, chosen, settings.report_year_start_month, reader)
    return Response(to_svg(report), media_type="image/svg+xml", headers=_file_headers())
