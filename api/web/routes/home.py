"""Your disputes (the page after sign-in) and the accessibility statement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import NowDep, PolicyDep, TransactionDep
from api.web.render import render
from api.web.signin import ViewerDep
from api.web.tables import PAGE_SIZE, dispute_rows, pages_of
from dispute_service import queries
from dispute_service.queries import DisputeFilters

router = APIRouter(include_in_schema=False)


@router.get("/")
async def your_disputes(
    request: Request,
    viewer: ViewerDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    # An IRO's own disputes; a manager's, those waiting on them. Someone who is both sees both lists.
    raised = waiting = None
    offset = (page - 1) * PAGE_SIZE
    if "iro" in viewer.roles:
        raised = await tx.run(
            queries.list_disputes,
            policy,
            viewer,
            DisputeFilters(iro=viewer.email, open_only=True, by_due=True, limit=PAGE_SIZE, offset=offset),
            now,
        )
    managed = viewer.roles - {"iro", "iro_manager", "admin"}
    if managed:
        waiting = await tx.run(
            queries.list_disputes,
            policy,
            viewer,
            DisputeFilters(waiting_on=viewer, by_due=True, limit=PAGE_SIZE, offset=offset),
            now,
        )
    return render(
        request,
        "web/home.html",
        title="Your disputes",
        nav="home",
        raised=dispute_rows(raised, policy, now) if raised else None,
        raised_pages=pages_of(request, raised, page) if raised else None,
        waiting=dispute_rows(waiting, policy, now) if waiting else None,
        waiting_pages=pages_of(request, waiting, page) if waiting else None,
        is_iro="iro" in viewer.roles,
        is_manager=bool(managed),
        reads_all=bool(viewer.roles & {"iro_manager", "admin"}),
    )


@router.get("/accessibility")
async def accessibility(request: Request) -> HTMLResponse:
    return render(request, "web/accessibility.html", title="Accessibility statement", private=False)
