"""Liveness and readiness, for the container's HEALTHCHECK and a load balancer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and, where enabled, the scheduler runs",
    responses={503: {"description": "Not ready; the body says which part"}},
)
def readyz(request: Request) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        with request.app.state.engine.connect() as conn:
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


@router.get(
    "/metrics",
    summary="Prometheus metrics: open disputes by stage, escalations by kind, overdue deadlines, sweep lag",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
