"""Liveness and readiness, for the container's HEALTHCHECK and a load balancer; metrics, for a scraper
that holds the metrics token."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.errors import problem, problem_responses
from dispute_service.database import READ_ONLY

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and, where enabled, the scheduler runs",
    responses={503: {"description": "Not ready; the body says which part"}},
)
def readyz(request: Request) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        # Read only: on SQLite, a probe must not queue for the write lock behind a burst of writers.
        with request.app.state.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the type is enough for an operator
        checks["database"] = f"unavailable: {type(exc).__name__}"
    scheduler = getattr(request.app.state, "scheduler", None)
    if request.app.state.settings.scheduler_enabled:
        checks["scheduler"] = "ok" if scheduler is not None and scheduler.running else "not running"
    else:
        checks["scheduler"] = "disabled"
    ready = all(v in ("ok", "disabled") for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503
    )


_REFUSED = problem_responses(401, 404)


@router.get(
    "/metrics",
    summary="Prometheus metrics: open disputes by stage, escalations by kind, overdue deadlines, sweep lag",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}},
        401: {**_REFUSED[401], "description": "No metrics token, or the wrong one"},
        404: {**_REFUSED[404], "description": "Metrics are off: no metrics token is set"},
    },
)
def metrics(request: Request) -> Response:
    # The figures say how many disputes are open at each stage: not for anyone who can reach the port.
    expected: str | None = request.app.state.settings.metrics_token
    if not expected:
        # As if there were no such route.
        return problem(404, "not-found", "Not Found", "Not Found")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return problem(
            401, "unauthenticated", "Not signed in", "metrics need the metrics token as a Bearer token"
        )
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
