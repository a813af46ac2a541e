"""Raise a dispute: one form, with the error summary and inline errors, the start-stage bypass with its
reason, and the human-rights rule. It calls the same use case as POST /api/v1/disputes."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api.deps import NowDep, PolicyDep, SettingsDep, TransactionDep
from api.web.errors import error_page
from api.web.forms import FormErrors, optional
from api.web.reads import read_afresh
from api.web.render import render
from api.web.signin import PosterDep, ViewerDep
from api.web.views import CASE_TYPE_WORDS, CATEGORY_WORDS, refs
from dispute_service import disputes, partners, people
from dispute_service.errors import InvalidInput
from dispute_service.inputs import RaiseInput
from dispute_service.partners import ContactChoice
from states.policy import OWN_LADDER_ID, Policy
from states.vocabulary import CASE_TYPES, CATEGORIES

router = APIRouter(include_in_schema=False)

LABELS = {
    "child_ref": "Child reference",
    "case_type": "Case type",
    "categories": "Concerns",
    "summary": "Summary",
    "team_manager_email": "Team manager",
    "sibling_refs": "Siblings' references",
    "rating": "Rating",
    "start_stage": "Stage to start at",
    "reason": "Reason for starting at a later stage",
    "ladder": "Who the dispute is with",
    "respondent_email": "Their contact",
    "their_reference": "Their reference (optional)",
    "contacts": "Contacts for later stages",
}
# The first of each field's inputs, for the error summary's links: a group's first option.
ANCHORS = {
    "case_type": "case_type",
    "categories": "categories",
    "rating": "rating",
    "start_stage": "start_stage",
}


def _form_page(
    request: Request,
    policy: Policy,
    choices: tuple[list[tuple[str, str]], list[ContactChoice]],
    values: dict[str, Any],
    errors: FormErrors,
) -> HTMLResponse:
    team_managers, contacts = choices
    return render(
        request,
        "web/raise.html",
        422 if errors else 200,
        title="Raise a dispute",
        nav="raise",
        values=values,
        errors=errors,
        error_summary=errors.summary(ANCHORS),
        labels=LABELS,
        case_types=[(c, CASE_TYPE_WORDS.get(c, c)) for c in CASE_TYPES],
        categories=[(c, CATEGORY_WORDS[c]) for c in CATEGORIES],
        stages=[(s.id, s.title) for s in policy.stages],
        first_stage=policy.first_stage.id,
        team_managers=team_managers,
        ladders=[(x.id, x.title) for x in policy.all_ladders],
        contacts=[(c.email, f"{c.name} ({c.email}), {c.organisation_name}") for c in contacts],
    )


@router.get("/disputes/new")
async def raise_form(request: Request, viewer: ViewerDep, tx: TransactionDep, policy: PolicyDep) -> Response:
    if "iro" not in viewer.roles:
        return error_page(request, 403, "Only an Independent Reviewing Officer can raise a dispute.")
    choices = await tx.finish(_choices)
    # A fresh key per form shown: sending the same form twice raises one dispute, not two.
    values = {
        "start_stage": policy.first_stage.id,
        "ladder": OWN_LADDER_ID,
        "form_key": secrets.token_urlsafe(16),
    }
    return _form_page(request, policy, choices, values, FormErrors())


def _choices(session: Session) -> tuple[list[tuple[str, str]], list[ContactChoice]]:
    """Who the form offers: the council's team managers, and the contacts of partner organisations."""
    return people.active_holders(session, "team_manager"), partners.contact_choices(session)


@router.post("/disputes/new")
async def raise_(
    request: Request,
    viewer: PosterDep,
    tx: TransactionDep,
    policy: PolicyDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    form = await request.form()

    def text(name: str) -> str | None:
        value = form.get(name)
        return value if isinstance(value, str) else None

    values: dict[str, Any] = {
        "child_ref": text("child_ref") or "",
        "case_type": text("case_type") or "",
        "categories": [v for v in form.getlist("categories") if isinstance(v, str)],
        "summary": text("summary") or "",
        "team_manager_email": text("team_manager_email") or "",
        "sibling_refs": text("sibling_refs") or "",
        "rating": text("rating") or "",
        "start_stage": text("start_stage") or policy.first_stage.id,
        "reason": text("reason") or "",
        "form_key": (text("form_key") or "")[:64],
        "ladder": text("ladder") or OWN_LADDER_ID,
        "respondent_email": text("respondent_email") or "",
        "their_reference": text("their_reference") or "",
    }
    own = values["ladder"] == OWN_LADDER_ID
    # The use case checks everything; these say the same in the words the GOV.UK patterns use for a
    # choice left empty, and come first in the summary.
    errors = FormErrors()
    if not values["case_type"]:
        errors.add("case_type", "Select the case type")
    if not values["categories"]:
        errors.add("categories", "Select at least one concern")
    bad_rating = values["rating"] not in ("", "none", "amber", "red")
    if bad_rating:
        errors.add("rating", "Rating must be none, amber or red")
    starts_later = own and values["start_stage"] != policy.first_stage.id
    # Each ladder takes its own fields: the council's a team manager and a start stage; a partner's its
    # contact and the other side's reference. What the other ladder's fields hold is not sent.
    data = RaiseInput(
        child_ref=values["child_ref"].strip(),
        case_type=values["case_type"],
        categories=values["categories"],
        summary=values["summary"],
        team_manager_email=optional(values["team_manager_email"]) if own else None,
        sibling_refs=refs(values["sibling_refs"]),
        rating=values["rating"] if values["rating"] in ("amber", "red") else None,
        start_stage=values["start_stage"] if own else None,
        # The reason goes with a later start only; a reason left in the hidden box is not sent.
        reason=optional(values["reason"]) if starts_later else None,
        ladder=values["ladder"],
        respondent_email=None if own else optional(values["respondent_email"]),
        their_reference=None if own else optional(values["their_reference"]),
    )
    if not bad_rating:
        try:
            snapshot = await tx.finish(
                disputes.raise_dispute,
                policy,
                viewer,
                data,
                now,
                idempotency_key=f"page:{values['form_key']}" if values["form_key"] else None,
                year_start_month=settings.report_year_start_month,
            )
        except InvalidInput as exc:
            for name, message in FormErrors.of(exc.errors, LABELS).messages.items():
                errors.add(name, message)
        else:
            return RedirectResponse(f"/disputes/{snapshot.dispute.id}?raised=1", status_code=303)
    choices = await read_afresh(request, _choices)
    return _form_page(request, policy, choices, values, errors)
