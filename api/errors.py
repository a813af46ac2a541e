"""The one place where domain errors become HTTP: `application/problem+json` (RFC 9457)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import Problem
from dispute_service.errors import (
    ContactNotFound,
    DisputeNotFound,
    DomainError,
    Forbidden,
    InvalidInput,
    LinkCodeExpired,
    LinkCodeWrong,
    LinkExpired,
    LinkLocked,
    LinkNotBound,
    LinkNotFound,
    LinkStale,
    LinkUsed,
    NotAllowedNow,
    OrganisationNotFound,
    PartnerConflict,
    PersonConflict,
    PersonNotFound,
    PreconditionRequired,
    ReportForbidden,
    Unauthenticated,
    UnknownTrigger,
    VersionConflict,
)

PROBLEM = "application/problem+json"
# A 422 names this many problems at most, each clipped to these lengths.
MAX_ERRORS = 20
MAX_FIELD = 100
MAX_MESSAGE = 300

# (status, type slug, title) per domain error; the first matching class in MRO order wins.
_MAP: dict[type[DomainError], tuple[int, str, str]] = {
    Unauthenticated: (401, "unauthenticated", "Not signed in"),
    DisputeNotFound: (404, "not-found", "Not found"),
    UnknownTrigger: (404, "unknown-action", "Unknown action"),
    PersonNotFound: (404, "not-found", "Not found"),
    OrganisationNotFound: (404, "not-found", "Not found"),
    ContactNotFound: (404, "not-found", "Not found"),
    Forbidden: (403, "forbidden", "Not permitted"),
    ReportForbidden: (403, "forbidden", "Not permitted"),
    PreconditionRequired: (428, "precondition-required", "Precondition required"),
    NotAllowedNow: (409, "not-allowed-now", "Not allowed now"),
    VersionConflict: (409, "version-conflict", "Version conflict"),
    PersonConflict: (409, "conflict", "Conflict"),
    PartnerConflict: (409, "conflict", "Conflict"),
    InvalidInput: (422, "invalid-input", "Invalid input"),
    LinkNotFound: (404, "link-not-found", "Link not recognised"),
    LinkUsed: (409, "link-used", "Link already used"),
    LinkStale: (409, "link-stale", "The dispute has moved on"),
    LinkExpired: (410, "link-expired", "Link expired"),
    LinkNotBound: (403, "link-not-yours", "This link is no longer yours to use"),
    LinkCodeExpired: (410, "link-code-expired", "Code expired"),
    LinkCodeWrong: (422, "link-code-wrong", "Code not right"),
    LinkLocked: (409, "link-locked", "Link locked"),
}


_DESCRIPTIONS = {
    401: "No valid token, or its person is unknown or inactive",
    403: "The caller may never do this",
    404: "Unknown, or not yours to read",
    409: "Not allowed now (with allowed_actions), a stale expected_version, or a conflict",
    413: "The request body is larger than its cap",
    428: "An aimed action (escalate, reopen, refer_to_cafcass, close, withdraw, resolve) sent with neither "
    "expected_version nor If-Match",
    422: "Invalid input (with errors naming each field)",
}


_HTML: dict[str, Any] = {"text/html": {}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for refusals, documented with the media type they are really sent with."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {s: {"description": _DESCRIPTIONS[s], "content": {PROBLEM: {"schema": schema}}} for s in statuses}


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _extra(exc: DomainError) -> dict[str, Any]:
    if isinstance(exc, NotAllowedNow):
        return {"allowed_actions": exc.allowed_actions}
    if isinstance(exc, VersionConflict):
        return {"current_version": exc.current_version}
    if isinstance(exc, UnknownTrigger):
        return {"known_actions": exc.known}
    if isinstance(exc, PersonConflict) and exc.references:
        return {"disputes": exc.references}
    return {}


def classify(exc: DomainError) -> tuple[int, str, str]:
    """(status, type slug, title) of a domain error: the one mapping, used by JSON and HTML pages alike."""
    for cls in type(exc).__mro__:
        if cls in _MAP:
            return _MAP[cls]
    return 400, "bad-request", "Bad request"


def domain_problem(exc: DomainError) -> JSONResponse:
    if isinstance(exc, InvalidInput):
        return invalid_input(exc.errors)
    status, slug, title = classify(exc)
    return problem(status, slug, title, str(exc), **_extra(exc))


def invalid_input(errors: Sequence[tuple[str, str]]) -> JSONResponse:
    """A 422 naming at most MAX_ERRORS problems, each clipped: enough to correct the request, and never a
    large echo of what was sent (a field name can be a key the client chose)."""
    shown = [{"field": _clip(f, MAX_FIELD), "message": _clip(m, MAX_MESSAGE)} for f, m in errors[:MAX_ERRORS]]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in shown)
    if len(errors) > MAX_ERRORS:
        detail += f"; and {len(errors) - MAX_ERRORS} more"
    return problem(422, "invalid-input", "Invalid input", detail, errors=shown)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


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


def document_problem_schema(app: FastAPI) -> None:
    """Refusals are documented as application/problem+json, which FastAPI's `model=` cannot express, so the
    Problem schema is added to the components by hand, and so is the 413 of every operation with a body."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                Problem.model_json_schema()
            )
            # Every body is capped (api/limits.py), before the route is reached.
            for path, item in schema.get("paths", {}).items():
                for operation in item.values():
                    if "requestBody" in operation:
                        # A page's form gets the error page; the API, problem details.
                        operation["responses"]["413"] = (
                            problem_responses(413)[413]
                            if path.startswith("/api/")
                            else {
                                "description": _DESCRIPTIONS[413] + ": an error page",
                                "content": {"text/html": {}},
                            }
                        )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_exception_handlers(app: FastAPI) -> None:
    """The API's refusals as problem+json; the same refusals on a page's path as a page."""
    # Imported here: the pages' modules import api.deps, which imports this module's neighbours.
    from api.web import errors as pages
    from api.web.render import is_page
    from api.web.signin import CsrfRefused, SignInRequired, Throttled

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if is_page(request.url.path):
            status, _, _ = classify(exc)
            if status == 401:
                return pages.sign_in_required(request, SignInRequired(request.url.path))
            return pages.error_page(request, status, str(exc))
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [(_field(tuple(e.get("loc", ()))), _message(e)) for e in exc.errors()]
        if is_page(request.url.path):
            # The page's forms re-show themselves with their errors; this is an address no form makes.
            return pages.error_page(request, 422, "; ".join(f"{f}: {m}" for f, m in errors[:MAX_ERRORS]))
        # Each error's location and message only: pydantic's `input` (and `ctx`) would echo what was sent.
        return invalid_input(errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if is_page(request.url.path):
            return pages.error_page(request, exc.status_code)
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (a body that is not UTF-8, say) is invalid input too.
            return invalid_input([("body", f"could not be read: {exc.detail}")])
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem(exc.status_code, slug, str(exc.detail), str(exc.detail))

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return pages.sign_in_required(request, exc)

    @app.exception_handler(Throttled)
    async def _throttled(request: Request, exc: Throttled) -> Response:
        page = pages.error_page(
            request, 429, f"Too many sign-in attempts from here. Please try again in {exc.wait} seconds."
        )
        page.headers["Retry-After"] = str(exc.wait)
        return page

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return pages.csrf_refused(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette logs the exception and its traceback; the answer says nothing about it.
        if is_page(request.url.path):
            return pages.error_page(request, 500)
        return problem(
            500, "internal-error", "Internal server error", "the service failed; nothing was changed"
        )
