"""Pages for emailed action links. GET shows what a link will do and changes nothing (mail scanners open
every link); POST does it, once, then redirects (303) to a result page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api.deps import NowDep, PolicyDep, SessionsDep, SettingsDep, wake_dispatch
from api.errors import classify
from api.ratelimit import LinkLimits
from api.web.forms import refuse_nul
from api.web.link_session import texts_for
from api.web.render import render
from api.web.signin import issue_form_token, set_form_cookie, verify_form_token
from dispute_service.database import reading
from dispute_service.errors import DomainError, InvalidInput, LinkExpired, LinkNotFound, LinkProblem
from dispute_service.inputs import ActionInput
from dispute_service.outbox import QUEUED_EMAIL
from notifications import link_reading, links
from states.vocabulary import MAX_TEXT, OUTCOME_CODES, Trigger

router = APIRouter(tags=["email links"])


# The token is in the URL: every page here is private (no cache keeps it), and every answer on a page's path
# sends no Referer and may not be framed (api.web.headers), redirects no-store too.
Token = Annotated[str, PathParam(max_length=128, description="The token from the email")]


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str = "textarea"
    options: tuple[tuple[str, str], ...] = field(default_factory=tuple)


_OUTCOME_OPTIONS = tuple((code, code.replace("_", " ").capitalize()) for code in OUTCOME_CODES)
_ACTIONS: dict[Trigger, tuple[str, str, tuple[FormField, ...]]] = {
    Trigger.ACKNOWLEDGE: (
        "Acknowledge the dispute",
        "This records that you have received the dispute. The clock keeps running.",
        (),
    ),
    Trigger.RESPOND: (
        "Respond to the dispute",
        "Your response goes to the Independent Reviewing Officer, who then resolves or escalates.",
        (FormField("response", "Your response"),),
    ),
    Trigger.RESOLVE: (
        "Resolve the dispute",
        "This ends the dispute at this stage. If the IRO is not satisfied they can reopen it, one level up.",
        (
            FormField("outcome", "What was agreed"),
            FormField("outcome_code", "Outcome", "select", _OUTCOME_OPTIONS),
        ),
    ),
    Trigger.ESCALATE: (
        "Escalate the dispute",
        "This moves the dispute to the next stage of the ladder.",
        (FormField("reason", "Why you are not satisfied"),),
    ),
    Trigger.REOPEN: (
        "Reopen the dispute",
        "This reopens the resolved dispute one level up the ladder.",
        (FormField("reason", "Why you are not satisfied with the resolution"),),
    ),
}


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return render(request, f"web/{name}", status, **context)


def _refusal(request: Request, exc: DomainError) -> HTMLResponse:
    status, _, title = classify(exc)
    if isinstance(exc, LinkProblem):
        # An expired link can be renewed (SPEC 10): the page says where.
        renew = isinstance(exc, LinkExpired)
        return _page(request, "link_message.html", status, title=title, message=str(exc), renew=renew)
    return _page(
        request, "link_message.html", status, title="This action cannot be done now", message=str(exc)
    )


class _Throttled(Exception):
    def __init__(self, wait: int) -> None:
        self.wait = wait


def _limits(request: Request) -> tuple[LinkLimits, str]:
    """The app's link limits, and the client they count this request against."""
    limits: LinkLimits = request.app.state.link_limits
    return limits, request.client.host if request.client else "unknown"


def _too_many(request: Request, wait: int) -> HTMLResponse:
    page = _page(
        request,
        "link_message.html",
        429,
        title="Too many attempts",
        message=f"Too many links have been tried in a short time. Please try again in {wait} seconds.",
    )
    page.headers["Retry-After"] = str(wait)
    return page


_LINK_RESPONSES: dict[int | str, dict[str, Any]] = {
    s: {"description": d, "content": {"text/html": {}}}
    for s, d in {
        200: "The confirmation page",
        403: "The link's person no longer has the part in the dispute that the link was sent for",
        404: "Unknown or tampered link",
        409: "Already used, or the dispute has moved on",
        410: "Expired",
        429: "Too many link uses from this client or for this person: try again after Retry-After seconds",
    }.items()
}
# A malformed token or query is answered with the error page (these are pages, for people); a form missing
# a field shows the form again with the error.
_INVALID = {"description": "Invalid input: an error page", "content": {"text/html": {}}}
_INVALID_OR_FORM = {
    "description": "Invalid input: the form again with the error",
    "content": {"text/html": {}},
}


# The result page says only what the service says: the query names an action, never the words shown.
_DONE: dict[str, str] = {
    Trigger.ACKNOWLEDGE: "Thank you. Your acknowledgement of the dispute is recorded.",
    Trigger.RESPOND: "Thank you. Your response is recorded and the Independent Reviewing Officer is told.",
    Trigger.RESOLVE: "Thank you. The resolution of the dispute is recorded.",
    Trigger.ESCALATE: "Thank you. The escalation is recorded: the dispute moves to the next stage.",
    Trigger.REOPEN: "Thank you. The reopening is recorded: the dispute moves one level up the ladder.",
}


@router.get(
    "/links/done",
    response_class=HTMLResponse,
    responses={422: _INVALID},
    summary="The result page after a link's action",
)
def done(request: Request, action: Annotated[str, Query(max_length=32)] = "") -> Response:
    message = _DONE.get(action, "Thank you. Your action is recorded.")
    return _page(request, "link_message.html", title="Done", message=message)


@router.get(
    "/links/{token}",
    response_class=HTMLResponse,
    responses={**_LINK_RESPONSES, 422: _INVALID},
    summary="What a link will do",
)
def show(
    request: Request,
    token: Token,
    sessions: SessionsDep,
    policy: PolicyDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    limits, client = _limits(request)
    wait = limits.per_client.wait(client, now.timestamp())
    if wait is not None:
        return _too_many(request, wait)
    try:
        with reading(sessions) as session:
            view = links.inspect(session, policy, settings.link_secret, token, now)
            bound = _still_bound(session, view)
            # With a live link session (a right one-time code), the page shows the dispute's texts too.
            texts = texts_for(request, session, policy, settings, token, now) if bound else None
    except LinkNotFound as exc:
        # Only a failed lookup counts: mail scanners open every good link, and someone guessing finds none.
        limits.per_client.use(client, now.timestamp())
        return _refusal(request, exc)
    except DomainError as exc:
        return _refusal(request, exc)
    if not bound:
        return _not_yours(request)
    issue_form_token(request)
    page = _confirm(request, token, view, {}, [], texts)
    set_form_cookie(request, page)
    return page


class _NotYours(Exception):
    pass


def _not_yours(request: Request) -> HTMLResponse:
    # No reference, no child: the page may be opened by someone who should no longer see the dispute.
    return _page(
        request,
        "link_message.html",
        403,
        title="This link is no longer yours to use",
        message="The part in this dispute that the link was sent to you for is no longer yours.",
    )


def _still_bound(session: Session, view: links.LinkView) -> bool:
    return links.still_bound(session, view.person_email, view.dispute_id, view.trigger)


def _confirm(
    request: Request,
    token: str,
    view: links.LinkView,
    values: dict[str, str],
    errors: list[tuple[str, str]],
    texts: link_reading.LinkTexts | None = None,
) -> HTMLResponse:
    title, explanation, fields = _ACTIONS[Trigger(view.trigger)]
    labels = {f.name: f.label for f in fields}
    return _page(
        request,
        "link_confirm.html",
        422 if errors else 200,
        title=title,
        token=token,
        view=view,
        explanation=explanation,
        fields=fields,
        values=values,
        errors={name: f"{labels.get(name, name)} {message}" for name, message in errors},
        button=title.split(" ")[0],
        texts=texts,
    )


@router.post(
    "/links/{token}",
    response_class=HTMLResponse,
    status_code=303,
    responses={
        **_LINK_RESPONSES,
        303: {"description": "Done: see the result page"},
        422: _INVALID_OR_FORM,
    },
    summary="Do what the link says, once",
)
def act(
    request: Request,
    token: Token,
    sessions: SessionsDep,
    policy: PolicyDep,
    settings: SettingsDep,
    now: NowDep,
    response: Annotated[str | None, Form(max_length=MAX_TEXT)] = None,
    outcome: Annotated[str | None, Form(max_length=MAX_TEXT)] = None,
    outcome_code: Annotated[str | None, Form(max_length=32)] = None,
    reason: Annotated[str | None, Form(max_length=MAX_TEXT)] = None,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    values = {
        k: v
        for k, v in {
            "response": response,
            "outcome": outcome,
            "outcome_code": outcome_code,
            "reason": reason,
        }.items()
        if v
    }
    try:
        # The same check as every page form's (api.web.forms).
        refuse_nul([*values.items(), ("csrf_token", csrf_token)])
    except InvalidInput as exc:
        return _refusal(request, exc)
    view: links.LinkView | None = None
    data = ActionInput(response=response, outcome=outcome, outcome_code=outcome_code, reason=reason)
    # Every use counts against the client, and each link found against its person as well.
    limits, client = _limits(request)
    wait = limits.per_client.use(client, now.timestamp())
    if wait is not None:
        return _too_many(request, wait)
    # The route owns the transaction, rather than the request dependency, because it answers a refusal
    # with a page instead of raising: leaving the `with` by an exception is what rolls the refusal back.
    try:
        with sessions.begin() as session:
            view = links.inspect(session, policy, settings.link_secret, token, now)
            if not _still_bound(session, view):
                raise _NotYours()
            wait = limits.per_address.use(view.person_email, now.timestamp())
            if wait is not None:
                raise _Throttled(wait)
            # After the link is known good, so a bad or spent link still says so; before it is used.
            verify_form_token(request, csrf_token)
            links.use(session, policy, settings.link_secret, token, data, now)
            queued_email = session.info.pop(QUEUED_EMAIL, False)
    except _NotYours:
        return _not_yours(request)
    except _Throttled as exc:
        return _too_many(request, exc.wait)
    except InvalidInput as exc:
        if view is None:
            return _refusal(request, exc)
        issue_form_token(request)
        return _confirm(request, token, view, values, exc.errors)
    except DomainError as exc:
        return _refusal(request, exc)
    if queued_email:
        wake_dispatch(request)
    return RedirectResponse(f"/links/done?{urlencode({'action': view.trigger})}", status_code=303)
