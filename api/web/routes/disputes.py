"""All open disputes, one dispute with its timeline, and the actions the viewer may take on it. Each calls
the same use cases as the API, in the request's one transaction."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import NowDep, PolicyDep, TransactionDep
from api.web.errors import error_page
from api.web.forms import FormErrors, date_from, digits, optional
from api.web.reads import read_afresh
from api.web.render import render
from api.web.signin import PosterDep, ViewerDep
from api.web.tables import PAGE_SIZE, dispute_rows, pages_of
from api.web.views import (
    ACTION_WORDS,
    CASE_TYPE_WORDS,
    CATEGORY_WORDS,
    day_words,
    due_words,
    owner_words,
    refs,
    stage_title,
    state_words,
    timeliness,
    when_words,
)
from dispute_service import disputes, partners, queries
from dispute_service.access import READ_ALL_ROLES, Actor
from dispute_service.errors import InvalidInput, NotAllowedNow, VersionConflict
from dispute_service.inputs import ActionInput
from dispute_service.partners import ContactChoice
from dispute_service.queries import DisputeFilters, DisputeSnapshot
from states.policy import OWN_LADDER_ID, Policy
from states.vocabulary import CASE_TYPES, CATEGORIES, EXTERNAL, OPEN_STATES, OUTCOME_CODES, State

router = APIRouter(include_in_schema=False)

DisputeId = Annotated[uuid.UUID, Path()]


# ------------------------------------------------------------------------------------- all open disputes


@router.get("/disputes")
async def all_open(
    request: Request,
    viewer: ViewerDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    stage: Annotated[str, Query(max_length=64)] = "",
    state: Annotated[str, Query(max_length=32)] = "",
    iro: Annotated[str, Query(max_length=320)] = "",
    case_type: Annotated[str, Query(max_length=32)] = "",
    overdue: Annotated[str, Query(max_length=8)] = "",
    sort: Literal["due", "raised"] = "due",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    if not viewer.roles & READ_ALL_ROLES:
        return error_page(request, 403, "All open disputes are for IRO managers and administrators.")
    # An unknown choice is ignored rather than refused: the filters are links and selects, and a stale
    # bookmark should still show the list.
    filters = DisputeFilters(
        stage=stage if stage in policy.stage_ids else None,
        state=state if state in {s.value for s in OPEN_STATES} else None,
        iro=optional(iro),
        case_type=case_type if case_type in CASE_TYPES else None,
        overdue=True if overdue == "yes" else None,
        open_only=True,
        by_due=sort == "due",
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    found = await tx.finish(queries.list_disputes, policy, viewer, filters, now)
    return render(
        request,
        "web/all_open.html",
        title="All open disputes",
        nav="all",
        rows=dispute_rows(found, policy, now),
        pages=pages_of(request, found, page),
        total=found.total,
        chosen={
            "stage": stage,
            "state": state,
            "iro": iro,
            "case_type": case_type,
            "overdue": overdue,
            "sort": sort,
        },
        stages=[(s.id, s.title) for s in policy.stages],
        states=[(s.value, state_words(s.value)) for s in State if s in OPEN_STATES],
        case_types=[(c, c.replace("_", " ").capitalize()) for c in CASE_TYPES],
    )


# ------------------------------------------------------------------------------------------ one dispute

# What each entry of the timeline says happened.
HAPPENED = {
    "raise": "Raised the dispute",
    "acknowledge": "Acknowledged",
    "respond": "Responded",
    "resolve": "Resolved",
    "reopen": "Reopened",
    "escalate": "Escalated",
    "timeout": "Escalated automatically: the deadline passed",
    "refer_to_cafcass": "Referred to CAFCASS",
    "close": "Closed",
    "withdraw": "Withdrew the dispute",
    "hold": "Put on hold",
    "resume": "Resumed",
    "extend": "Extended the deadline",
    "reassign": "Handed the stage to someone else",
    "reassign_iro": "Changed the IRO",
    "amend": "Amended the details",
    "redact": "Redacted a text",
    "defer": "Moved the escalation day (a non-working day)",
    "remind": "Sent a reminder",
    "seal": "Sealed the audit log",
}
TEXT_WORDS = {
    "summary": "Summary",
    "reason": "Reason",
    "response": "Response",
    "outcome": "Outcome",
}

# The actions a page offers, and the questions each asks.
FIELDS: dict[str, tuple[str, ...]] = {
    "acknowledge": (),
    "respond": ("response",),
    "resolve": ("outcome", "outcome_code"),
    "escalate": ("reason",),
    "reopen": ("reason",),
    "refer_to_cafcass": ("reason", "referred_on", "cafcass_reference"),
    "close": ("outcome", "outcome_code"),
    "withdraw": ("reason",),
    "hold": ("reason", "review_on"),
    "resume": (),
    "extend": ("reason", "working_days"),
    "reassign": ("owner_email",),
    "reassign_iro": ("iro_email",),
    "name_contact": ("stage", "contact_email"),
    "amend": ("child_ref", "sibling_refs", "case_type", "categories", "reason"),
    # Reached from the text's own link in the timeline, which names it.
    "redact": ("text_id", "reason"),
}
# When the correct-the-details form changes nothing (a field left as it was is not sent, so that the
# audit log's before and after name only what changed).
NOTHING_CHANGED = "Change at least one of the details, or go back to the dispute"
NO_SUCH_TEXT = "This dispute has no such text to redact, or it is redacted already."
QUESTIONS = {
    "response": "Your response",
    "outcome": "What was agreed",
    "outcome_code": "Outcome",
    "reason": "Your reason",
    "referred_on": "Date the case was referred to CAFCASS",
    "cafcass_reference": "CAFCASS reference (optional)",
    "review_on": "Date to review the hold",
    "working_days": "Working days to add",
    "owner_email": "Email of the person to hand the stage to",
    "iro_email": "Email of the new IRO",
    "stage": "Stage",
    "contact_email": "Contact",
    "child_ref": "Child reference",
    "sibling_refs": "Siblings' references (optional)",
    "case_type": "Case type",
    "categories": "Concerns",
    "text_id": "The text to redact",
}
EXPLAIN = {
    "acknowledge": "This records that you have received the dispute. The deadline does not change.",
    "respond": "Your response goes to the Independent Reviewing Officer, who then resolves or escalates.",
    "resolve": "This ends the dispute at this stage. The IRO can reopen it, one level up, for a while.",
    "escalate": "This moves the dispute to the next stage of the ladder now.",
    "reopen": "This reopens the resolved dispute one level up the ladder.",
    "refer_to_cafcass": "This records that you referred the child's case to CAFCASS.",
    "close": "This ends the dispute.",
    "withdraw": "This withdraws the dispute. It cannot be undone.",
    "hold": "This stops the clock until you resume it, for example while waiting for a court hearing.",
    "resume": "This restarts the clock with the time that was left.",
    "extend": "This gives the stage more time.",
    "reassign": "This hands the current stage to another person who holds its role.",
    "reassign_iro": "This hands the dispute to another IRO.",
    "name_contact": "This names who at the other organisation answers at a later stage. If the dispute is "
    "waiting for that stage's contact, it enters the stage at once.",
    "amend": "Correct a detail entered wrongly. The timeline keeps what it was, what it is now, and your "
    "reason.",
    "redact": "This replaces the text with \u201c[redacted]\u201d wherever it is shown, for example when a "
    "name was typed into it. The timeline records who redacted it, when and why, and the audit log still "
    "verifies.",
}


def _summary_rows(snapshot: DisputeSnapshot, policy: Policy) -> list[tuple[str, str]]:
    d = snapshot.dispute
    rows = [
        ("Reference", d.reference),
        ("Child reference", d.child_ref),
        ("Siblings' references", ", ".join(d.sibling_refs) or "None"),
        ("Case type", d.case_type.replace("_", " ").capitalize()),
        ("Concerns", ", ".join(c.replace("_", " ") for c in d.categories)),
        ("Rating", (d.rating or "none").capitalize()),
        ("IRO", d.iro_email),
        ("Stage", stage_title(policy, d.stage)),
        ("State", state_words(d.state)),
        ("Waiting on", owner_words(d, policy)),
        ("Due", due_words(d, policy)),
        ("Raised", day_words(d.raised_at, policy)),
    ]
    if d.ladder != OWN_LADDER_ID:
        ladder = policy.ladder(d.ladder) if d.ladder in {x.id for x in policy.all_ladders} else None
        named = "; ".join(f"{stage_title(policy, s)}: {e}" for s, e in sorted(d.contacts.items())) or "None"
        rows[1:1] = [
            ("Ladder", ladder.title if ladder else d.ladder),
            ("Organisation", d.organisation_id or ""),
            ("Their reference", d.their_reference or "None"),
            ("Contacts named", named),
        ]
        if d.awaiting_contact_for:
            rows.append(("Waiting for a contact for", stage_title(policy, d.awaiting_contact_for)))
    if d.outcome_code:
        rows.append(("Outcome", d.outcome_code.replace("_", " ").capitalize()))
    if d.cafcass_reference:
        rows.append(("CAFCASS reference", d.cafcass_reference))
    return rows


def _timeline(entries: list[tuple[Any, list[Any]]], policy: Policy) -> list[dict[str, Any]]:
    items = []
    for entry, texts in entries:
        moved = entry.from_stage is not None and entry.from_stage != entry.to_stage
        items.append(
            {
                "when": when_words(entry.at, policy),
                "iso": entry.at.isoformat(),
                "who": "The service" if entry.actor == "system" else entry.actor,
                "role": (entry.actor_role or "").replace("_", " "),
                "channel": {"email_link": "by email link", "web": "on these pages"}.get(entry.channel, ""),
                "what": HAPPENED.get(entry.trigger, entry.trigger.replace("_", " ").capitalize()),
                "moved": (
                    f"From {stage_title(policy, entry.from_stage)} to {stage_title(policy, entry.to_stage)}"
                    if moved
                    else ""
                ),
                "texts": [
                    {
                        "id": t.id,
                        "kind": TEXT_WORDS.get(t.kind, t.kind.replace("_", " ").capitalize()),
                        "body": None if t.redacted_at else t.body,
                    }
                    for t in texts
                ],
                "details": json.loads(entry.details),
            }
        )
    # Newest first: what happened last is what a reader needs first.
    return list(reversed(items))


def _dispute_page(
    request: Request,
    snapshot: DisputeSnapshot,
    entries: list[tuple[Any, list[Any]]],
    policy: Policy,
    now: Any,
    *,
    status: int = 200,
    template: str = "web/dispute.html",
    **extra: Any,
) -> HTMLResponse:
    d = snapshot.dispute
    # Redacting starts from the text, in the timeline.
    actions = [a for a in snapshot.allowed_actions if a in FIELDS and a != "redact"]
    return render(
        request,
        template,
        status,
        title=f"Dispute {d.reference}",
        dispute_id=str(d.id),
        reference=d.reference,
        version=d.version,
        tag=timeliness(d, policy, now),
        summary_rows=_summary_rows(snapshot, policy),
        summary_text=snapshot.summary,
        outcome_text=snapshot.outcome,
        timeline=_timeline(entries, policy),
        actions=[(a, ACTION_WORDS.get(a, a), not FIELDS[a]) for a in actions],
        can_redact="redact" in snapshot.allowed_actions,
        **extra,
    )


async def _read_for_page(
    tx: Any, policy: Policy, dispute_id: uuid.UUID, viewer: Actor, now: Any
) -> tuple[DisputeSnapshot, list[Any]]:
    snapshot = await tx.run(queries.get_dispute, policy, dispute_id, viewer, now)
    entries = await tx.finish(queries.audit_log, dispute_id, viewer)
    return snapshot, entries


@router.get("/disputes/{dispute_id}")
async def dispute_page(
    request: Request,
    dispute_id: DisputeId,
    viewer: ViewerDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    raised: Annotated[str, Query(max_length=8)] = "",
    done: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    snapshot, entries = await _read_for_page(tx, policy, dispute_id, viewer, now)
    banner = None
    if raised:
        banner = f"Dispute {snapshot.dispute.reference} raised"
    elif done in ACTION_WORDS:
        banner = f"Done: {ACTION_WORDS[done].lower()}"
    return _dispute_page(request, snapshot, entries, policy, now, banner=banner)


# -------------------------------------------------------------------------------------------- actions


def _choices(
    snapshot: DisputeSnapshot, trigger: str, policy: Policy, contacts: list[ContactChoice]
) -> dict[str, list[tuple[str, str]]]:
    """The fields a page offers as a choice rather than typed: a partner's stages and its contacts."""
    d = snapshot.dispute
    people = [(c.email, f"{c.name} ({c.email})") for c in contacts]
    if trigger == "name_contact":
        ladder = policy.ladder(d.ladder)
        here = ladder.stage_ids.index(d.stage) if d.stage in ladder.stage_ids else -1
        later = [s for s in ladder.stages[here + 1 :] if s.owner_role is None]
        return {"stage": [(s.id, s.title) for s in later], "contact_email": people}
    if trigger == "reassign" and d.owner_role == EXTERNAL:
        return {"owner_email": [p for p in people if p[0] != d.owner_email]}
    return {}


async def _contacts_for(tx: Any, snapshot: DisputeSnapshot, trigger: str) -> list[ContactChoice]:
    d = snapshot.dispute
    if d.organisation_id is None or trigger not in ("name_contact", "reassign"):
        return []
    found: list[ContactChoice] = await tx.run(partners.contact_choices, d.organisation_id)
    return found


def _action_page(
    request: Request,
    snapshot: DisputeSnapshot,
    trigger: str,
    policy: Policy,
    values: dict[str, Any],
    errors: FormErrors,
    contacts: list[ContactChoice] | None = None,
    text: dict[str, str] | None = None,
) -> HTMLResponse:
    d = snapshot.dispute
    return render(
        request,
        "web/action.html",
        422 if errors else 200,
        title=f"{ACTION_WORDS[trigger]}: {d.reference}",
        trigger=trigger,
        action=ACTION_WORDS[trigger],
        explain=EXPLAIN.get(trigger, ""),
        fields=FIELDS[trigger],
        questions=QUESTIONS,
        outcome_codes=[(c, c.replace("_", " ").capitalize()) for c in OUTCOME_CODES],
        dispute_id=str(d.id),
        reference=d.reference,
        child_ref=d.child_ref,
        stage=stage_title(policy, d.stage),
        version=values.get("version", d.version),
        values=values,
        errors=errors,
        error_summary=errors.summary({"referred_on": "referred_on-day", "review_on": "review_on-day"}),
        choices=_choices(snapshot, trigger, policy, contacts or []),
        case_types=[(c, CASE_TYPE_WORDS.get(c, c)) for c in CASE_TYPES],
        categories=[(c, CATEGORY_WORDS[c]) for c in CATEGORIES],
        text=text,
    )


def _details_now(snapshot: DisputeSnapshot) -> dict[str, Any]:
    """The correct-the-details form, filled in with the details as they are."""
    d = snapshot.dispute
    return {
        "child_ref": d.child_ref,
        "sibling_refs": ", ".join(d.sibling_refs),
        "case_type": d.case_type,
        "categories": list(d.categories),
    }


def _redactable(
    session: Any, dispute_id: uuid.UUID, viewer: Actor, policy: Policy, text_id: int
) -> dict[str, str] | None:
    """The text the redact form names, as the timeline shows it, if it is this dispute's and not yet
    redacted."""
    for entry, texts in queries.audit_log(session, dispute_id, viewer):
        for t in texts:
            if t.id == text_id and t.redacted_at is None:
                return {
                    "kind": TEXT_WORDS.get(t.kind, t.kind.replace("_", " ").capitalize()),
                    "what": HAPPENED.get(entry.trigger, entry.trigger.replace("_", " ").capitalize()),
                    "when": when_words(entry.at, policy),
                    "body": t.body,
                }
    return None


def _offered(snapshot: DisputeSnapshot, trigger: str) -> bool:
    return trigger in FIELDS and trigger in snapshot.allowed_actions


Trigger = Annotated[str, Path(max_length=32)]


@router.get("/disputes/{dispute_id}/actions/{trigger}")
async def action_form(
    request: Request,
    dispute_id: DisputeId,
    trigger: Trigger,
    viewer: ViewerDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    text: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    snapshot = await tx.run(queries.get_dispute, policy, dispute_id, viewer, now)
    if not _offered(snapshot, trigger):
        return error_page(
            request,
            409,
            f"{ACTION_WORDS.get(trigger, 'That action')} is not something you can do on this dispute now.",
        )
    if trigger == "redact":
        found = (
            await tx.finish(_redactable, dispute_id, viewer, policy, int(text)) if digits(text, 12) else None
        )
        if found is None:
            return error_page(request, 404, NO_SUCH_TEXT)
        return _action_page(request, snapshot, trigger, policy, {"text_id": text}, FormErrors(), text=found)
    contacts = await _contacts_for(tx, snapshot, trigger)
    values = _details_now(snapshot) if trigger == "amend" else {}
    return _action_page(request, snapshot, trigger, policy, values, FormErrors(), contacts)


def _action_input(form: Any, trigger: str, errors: FormErrors) -> ActionInput:
    def text(name: str) -> str | None:
        value = form.get(name)
        return value if isinstance(value, str) else None

    fields: dict[str, Any] = {}
    for name in FIELDS[trigger]:
        if name in ("referred_on", "review_on"):
            found = date_from(text(f"{name}-day"), text(f"{name}-month"), text(f"{name}-year"))
            if isinstance(found, str):
                errors.add(name, f"{QUESTIONS[name]} {found}")
            else:
                fields[name] = found
        elif name == "categories":
            chosen = [v for v in form.getlist(name) if isinstance(v, str)]
            if not chosen:
                errors.add(name, "Select at least one concern")
            fields[name] = chosen
        elif name == "sibling_refs":
            fields[name] = refs(text(name))
        elif name == "text_id":
            raw = text(name)
            if not digits(raw, 12):
                errors.add(name, "The form did not say which text to redact")
            else:
                fields[name] = int(raw or 0)
        elif name == "working_days":
            raw = optional(text(name))
            if raw is not None and not (digits(raw, 2) and 1 <= int(raw) <= 60):
                errors.add(name, "Working days must be a whole number from 1 to 60")
            else:
                fields[name] = int(raw) if raw else None
        else:
            fields[name] = optional(text(name))
    return ActionInput(**fields)


@router.post("/disputes/{dispute_id}/actions/{trigger}")
async def act(
    request: Request,
    dispute_id: DisputeId,
    trigger: Trigger,
    viewer: PosterDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
) -> Response:
    form = await request.form()
    raw_version = form.get("version")
    if trigger not in FIELDS:
        return error_page(request, 404, f"There is no action called {trigger[:32]!r} on these pages.")
    if not isinstance(raw_version, str) or not digits(raw_version, 9):
        return error_page(request, 422, "The form did not say which version of the dispute it was for.")
    version = int(raw_version)
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    values["categories"] = [v for v in form.getlist("categories") if isinstance(v, str)]
    errors = FormErrors()
    data = _action_input(form, trigger, errors)
    if not errors:
        try:
            # Every page action is aimed at the version the page showed: a form from before a change is
            # refused, and the person sees the dispute as it is now.
            await tx.finish(
                _apply,
                policy,
                dispute_id,
                trigger,
                viewer,
                data,
                now,
                expected_version=version,
            )
        except VersionConflict:
            return await _changed_page(request, dispute_id, viewer, policy, now)
        except NotAllowedNow as exc:
            # Not allowed because the dispute moved on since the page was drawn: say so, and show it now.
            snapshot = await read_afresh(request, queries.get_dispute, policy, dispute_id, viewer, now)
            if snapshot.dispute.version != version:
                return await _changed_page(request, dispute_id, viewer, policy, now)
            return error_page(request, 409, str(exc))
        except InvalidInput as exc:
            errors = FormErrors.of(exc.errors, QUESTIONS)
        else:
            return RedirectResponse(f"/disputes/{dispute_id}?done={trigger}", status_code=303)
    snapshot = await read_afresh(request, queries.get_dispute, policy, dispute_id, viewer, now)
    contacts = (
        await read_afresh(request, partners.contact_choices, snapshot.dispute.organisation_id)
        if snapshot.dispute.organisation_id is not None
        else []
    )
    text = (
        await read_afresh(request, _redactable, dispute_id, viewer, policy, data.text_id)
        if trigger == "redact" and data.text_id is not None
        else None
    )
    values = {**values, "version": version}
    return _action_page(request, snapshot, trigger, policy, values, errors, contacts, text)


def _apply(
    session: Any,
    policy: Policy,
    dispute_id: uuid.UUID,
    trigger: str,
    viewer: Actor,
    data: ActionInput,
    now: Any,
    *,
    expected_version: int,
) -> DisputeSnapshot:
    """The page's action: the use case, except that correcting the details sends only the details that
    differ from the dispute's, so that the timeline names only what changed."""
    if trigger == "amend":
        d = queries.get_dispute(session, policy, dispute_id, viewer, now).dispute
        same = {
            "child_ref": data.child_ref == d.child_ref,
            "sibling_refs": data.sibling_refs == list(d.sibling_refs),
            "case_type": data.case_type == d.case_type,
            "categories": set(data.categories or []) == set(d.categories),
        }
        if d.version == expected_version and all(same.values()):
            raise InvalidInput([("child_ref", NOTHING_CHANGED)])
        data = replace(
            data,
            child_ref=None if same["child_ref"] else data.child_ref,
            sibling_refs=None if same["sibling_refs"] else data.sibling_refs,
            case_type=None if same["case_type"] else data.case_type,
            categories=None if same["categories"] else data.categories,
        )
    return disputes.apply_trigger(
        session, policy, dispute_id, trigger, viewer, data, now, expected_version=expected_version
    )


def _read_both(
    session: Any, policy: Policy, dispute_id: uuid.UUID, viewer: Actor, now: Any
) -> tuple[DisputeSnapshot, list[Any]]:
    return queries.get_dispute(session, policy, dispute_id, viewer, now), queries.audit_log(
        session, dispute_id, viewer
    )


async def _changed_page(
    request: Request, dispute_id: uuid.UUID, viewer: Actor, policy: Policy, now: Any
) -> HTMLResponse:
    snapshot, entries = await read_afresh(request, _read_both, policy, dispute_id, viewer, now)
    return _dispute_page(
        request, snapshot, entries, policy, now, status=409, template="web/dispute_changed.html"
    )
