"""Raise a dispute: one form, with the error summary and inline errors, the start-stage bypass with its
reason, and the human-rights rule. It calls the same use case as POST /api/v1/disputes."""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import NowDep, PolicyDep, SettingsDep, TransactionDep
from api.web.errors import error_page
from api.web.forms import FormErrors, optional
from api.web.reads import read_afresh
from api.web.render import render
from api.web.signin import PosterDep, ViewerDep
from dispute_service import disputes, people
from dispute_service.errors import InvalidInput
from dispute_service.inputs import RaiseInput
from states.policy import Policy
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
}
CASE_TYPE_WORDS = {
    "looked_after": "Looked after child",
    "child_protection": "Child protection",
    "care_leaver": "Care leaver",
}
CATEGORY_WORDS = {c: c.replace("_", " ").capitalize() for c in CATEGORIES}
CATEGORY_WORDS["human_rights_breach"] = "Human rights breach (starts at Team Manager or above)"
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
    team_managers: list[tuple[str, str]],
    values: dict[str, Any],
    errors: FormErrors,
) -> HTMLResponse:
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
    )


@router.get("/disputes/new")
async def raise_form(request: Request, viewer: ViewerDep, tx: TransactionDep, policy: PolicyDep) -> Response:
    if "iro" not in viewer.roles:
        return error_page(request, 403, "Only an Independent Reviewing Officer can raise a dispute.")
    team_managers = await tx.finish(people.active_holders, "team_manager")
    # A fresh key per form shown: sending the same form twice raises one dispute, not two.
    values = {"start_stage": policy.first_stage.id, "form_key": secrets.token_urlsafe(16)}
    return _form_page(request, policy, team_managers, values, FormErrors())


def _refs(text: str | None) -> list[str]:
    return [r for r in re.split(r"[\s,]+", text or "") if r]


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
    }
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
    starts_later = values["start_stage"] != policy.first_stage.id
    data = RaiseInput(
        child_ref=values["child_ref"].strip(),
        case_type=values["case_type"],
        categories=values["categories"],
        summary=values["summary"],
        team_manager_email=optional(values["team_manager_email"]),
        sibling_refs=_refs(values["sibling_refs"]),
        rating=values["rating"] if values["rating"] in ("amber", "red") else None,
        start_stage=values["start_stage"],
        # The reason goes with a later start only; a reason left in the hidden box is not sent.
        reason=optional(values["reason"]) if starts_later else None,
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
    team_managers = await read_afresh(request, people.active_holders, "team_manager")
    return _form_page(request, policy, team_managers, values, errors)
