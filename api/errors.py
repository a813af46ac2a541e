"""The one place where domain errors become HTTP: `application/problem+json` (RFC 9457), SPEC section 3."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dispute_service.errors import (
    DisputeNotFound,
    DomainError,
    Forbidden,
    InvalidInput,
    NotAllowedNow,
    PersonConflict,
    PersonNotFound,
    Unauthenticated,
    UnknownTrigger,
    VersionConflict,
)

PROBLEM = "application/problem+json"

# (status, type slug, title) per domain error; the first matching class in MRO order wins.
_MAP: dict[type[DomainError], tuple[int, str, str]] = {
    Unauthenticated: (401, "unauthenticated", "Not signed in"),
    DisputeNotFound: (404, "not-found", "Not found"),
    UnknownTrigger: (404, "unknown-action", "Unknown action"),
    PersonNotFound: (404, "not-found", "Not found"),
    Forbidden: (403, "forbidden", "Not permitted"),
    NotAllowedNow: (409, "not-allowed-now", "Not allowed now"),
    VersionConflict: (409, "version-conflict", "Version conflict"),
    PersonConflict: (409, "conflict", "Conflict"),
    InvalidInput: (422, "invalid-input", "Invalid input"),
}


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _extra(exc: DomainError) -> dict[str, Any]:
    if isinstance(exc, NotAllowedNow):
        return {"allowed_actions": exc.allowed_actions}
    if isinstance(exc, VersionConflict):
        return {"current_version": exc.current_version}
    if isinstance(exc, InvalidInput):
        return {"errors": [{"field": f, "message": m} for f, m in exc.errors]}
    if isinstance(exc, UnknownTrigger):
        return {"known_actions": exc.known}
    if isinstance(exc, PersonConflict) and exc.references:
        return {"disputes": exc.references}
    return {}


def domain_problem(exc: DomainError) -> JSONResponse:
    for cls in type(exc).__mro__:
        if cls in _MAP:
            status, slug, title = _MAP[cls]
            return problem(status, slug, title, str(exc), **_extra(exc))
    return problem(400, "bad-request", "Bad request", str(exc))


def _field(loc: tuple[int | str, ...]) -> str:
    # ("body", "categories", 0) -> "categories[0]"; query and header names keep their own name.
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e.get("loc", ()))), "message": _message(e)} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "invalid-input", "Invalid input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem(exc.status_code, slug, str(exc.detail), str(exc.detail))
