"""The annual report: counts only, for managers, as JSON, CSV or an SVG chart."""

from __future__ import annotations

import time
from datetime import date
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import PolicyDep, SettingsDep, SnapshotActorDep, SnapshotTransactionDep
from api.errors import problem_responses
from dispute_service.access import Actor, require_report_reader

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
log = structlog.get_logger("api.reports")

CSV = "text/csv"
SVG = "image/svg+xml"


class Period(BaseModel):
    start: date
    end: date
    label: str


class Raised(BaseModel):
    this_year: int
    previous_year: int
    change: int


class Escalations(BaseModel):
    automatic: int
    manual: int


class Responses(BaseModel):
    on_time: int
    late: int


class LadderFigures(BaseModel):
    """A ladder's or an organisation's year: raised in it, stage moves up in it (automatic and manual),
    resolved in it, and open at its end."""

    raised: int
    escalations: int
    resolved: int
    open: int


class AnnualReportOut(BaseModel):
    """One key per measure. Breakdowns are keyed by id, in the policy's ladder order for stages."""

    period: Period
    raised: Raised
    by_case_type: dict[str, int]
    by_category: dict[str, int]
    highest_stage: dict[str, int]
    resolved_at_stage: dict[str, int]
    escalations: Escalations
    responses: Responses
    cafcass_referrals: int
    withdrawn: int
    open_at_year_end: int
    median_working_days_to_close: float | None
    by_ladder: dict[str, LadderFigures] = Field(
        description="Every ladder of the policy by id: the council's own (`own`) first, then the partners'"
    )
    by_organisation: dict[str, LadderFigures] = Field(
        description="The organisations with any figure in the year, by id; none for the council's own ladder"
    )
    sentences: list[str] = Field(
        description="One per case type, then one for partner agencies and one for other local authorities "
        "when any disputes were raised with them in the year"
    )


async def report_reader(actor: SnapshotActorDep) -> Actor:
    # A dependency, so the 403 comes before any 422 for the query.
    require_report_reader(actor)
    return actor


@router.get(
    "/annual",
    response_model=AnnualReportOut,
    responses={
        200: {
            "description": "The report: JSON, or with format=csv a CSV for Excel, or with format=svg a chart",
            "content": {CSV: {"schema": {"type": "string"}}, SVG: {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403, 422),
    },
    summary="Annual escalation counts for the IRO annual report",
)
async def annual(
    actor: Annotated[Actor, Depends(report_reader)],
    tx: SnapshotTransactionDep,
    policy: PolicyDep,
    settings: SettingsDep,
    year: Annotated[
        int,
        Query(ge=1900, le=9998, description="The reporting year, by the year it starts in: 2017 for 2017-18"),
    ],
    output_format: Annotated[Literal["json", "csv", "svg"], Query(alias="format")] = "json",
) -> Response:
    # Imported by the first report, not at start-up: the report's queries and formats are a few per cent of
    # the server's start, for a request made a few times a year.
    from dispute_service.report import formats as report_formats
    from dispute_service.report.annual import annual_report

    began = time.perf_counter()
    report = await tx.finish(
        annual_report, policy, year, start_month=settings.report_year_start_month, reader=actor
    )
    response: Response
    if output_format == "csv":
        response = Response(
            report_formats.to_csv(report),
            media_type=CSV,
            headers={"Content-Disposition": f'attachment; filename="annual-report-{report.year.label}.csv"'},
        )
    elif output_format == "svg":
        # On the event loop: the template renders in well under a millisecond.
        response = Response(report_formats.to_svg(report), media_type=SVG)
    else:
        response = JSONResponse(report.to_dict())
    # Counts and the caller only: the report holds no free text, and neither does its log line.
    log.info(
        "report.served",
        year=report.year.label,
        format=output_format,
        actor=actor.email,
        seconds=round(time.perf_counter() - began, 3),
    )
    return response
