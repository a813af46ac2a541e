"""The organisations outside the council and their external contacts (SPEC 10), for admins: the list of
organisations, adding one, each organisation's page (its name and kind, its contacts, its history), adding a
contact, and each contact's page to change their name or organisation, deactivate or reactivate them, and
read their history.

Modelled on the staff directory's pages (`people`): every change goes through the same use case as
`/api/v1/organisations` and `/api/v1/contacts`, in the request's one transaction. A refusal (an id or an
address already there, a contact at a staff address, an unknown organisation, a contact who still holds a
stage of an open dispute) re-shows the form with the values sent, a GOV.UK error summary and the message at
the field; a change that is made answers with a redirect to a page that says so (post, redirect, get)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from api.deps import NowDep, PolicyDep, SettingsDep, Transaction, TransactionDep
from api.web.forms import MAX_EMAIL, MAX_NAME, FormErrors
from api.web.render import render
from api.web.signin import AdminDep, AdminPosterDep
from api.web.views import when_words
from dispute_service import partners
from dispute_service.access import Actor
from dispute_service.errors import AddressIsStaff, InvalidInput, PartnerConflict
from states.policy import Policy
from states.vocabulary import MAX_ORGANISATION_ID, ORGANISATION_KINDS

router = APIRouter(include_in_schema=False)

NAV = "organisations"

KIND_WORDS = {"partner": "Partner agency", "other_authority": "Another local authority"}
KIND_HINTS = {
    "partner": "Health, education, housing or a provider: its contacts can be named on a partner ladder",
    "other_authority": "Its contacts can be named on a ladder for another authority's disputes",
}
CHANGE_WORDS = {
    "added": "Added",
    "name_changed": "Name changed",
    "kind_changed": "Kind changed",
    "organisation_changed": "Moved to another organisation",
    "deactivated": "Deactivated",
    "reactivated": "Reactivated",
}
# What the page after a change says; the redirect names one of these, never words of its own.
DONE_WORDS = {
    "saved": "The changes to {name} have been saved.",
    "unchanged": "Nothing was changed: {name}'s details were already as sent.",
    "deactivated": "{name} has been deactivated. They can no longer be named for a stage of a dispute.",
    "reactivated": "{name} has been reactivated and can be named for a stage again.",
}
BAD_EMAIL = "Enter an email address in the correct format, like name@example.org"
BAD_ID = (
    "The id must start with a lower-case letter and have only lower-case letters, digits and underscores "
    f"(_), at most {MAX_ORGANISATION_ID} characters"
)

OrganisationId = Annotated[str, Path(max_length=MAX_ORGANISATION_ID)]
Email = Annotated[str, Path(max_length=MAX_EMAIL)]


def kind_words(kind: str) -> str:
    return KIND_WORDS.get(kind, kind.replace("_", " ").capitalize())


def organisation_href(organisation_id: str) -> str:
    return "/organisations/" + quote(organisation_id, safe="")


def contact_href(email: str) -> str:
    return "/contacts/" + quote(email, safe="@")


# ------------------------------------------------------------------------------------------ forms


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _check_name(name: str, errors: FormErrors, whose: str) -> None:
    if not name:
        errors.add("name", f"Enter the {whose} name")
    elif len(name) > MAX_NAME:
        errors.add("name", f"Name must be {MAX_NAME} characters or fewer")


def _check_kind(kind: str, errors: FormErrors) -> None:
    if not kind:
        errors.add("kind", "Select the kind of organisation")
    elif kind not in ORGANISATION_KINDS:
        errors.add("kind", "Select a kind from the list")


def _invalid(exc: InvalidInput, errors: FormErrors, fields: tuple[str, ...], sent: FormData) -> None:
    """The use case's own refusal of a field, at that field when the form has it: in the page's words for
    the fields whose refusals the use case words for the API and the imports, its own otherwise."""
    for name, message in exc.errors:
        if name == "id":
            errors.add("id", BAD_ID)
        elif name == "email":
            errors.add("email", BAD_EMAIL)
        elif name == "organisation":
            unknown = _text(sent, "organisation")
            errors.add("organisation", f"There is no organisation {unknown!r}: choose one from the list")
        else:
            errors.add(name if name in fields else fields[0], message[:1].upper() + message[1:])


def kind_items(chosen: str) -> list[dict[str, Any]]:
    return [
        {
            "value": kind,
            "text": kind_words(kind),
            "checked": kind == chosen,
            "hint": {"text": KIND_HINTS[kind]},
        }
        for kind in ORGANISATION_KINDS
    ]


def organisation_items(organisations: list[dict[str, Any]], chosen: str) -> list[dict[str, Any]]:
    known = any(o["id"] == chosen for o in organisations)
    first = [] if known else [{"value": "", "text": "Choose an organisation", "selected": True}]
    return first + [
        {"value": o["id"], "text": o["name"], "selected": o["id"] == chosen} for o in organisations
    ]


# ------------------------------------------------------------------------------------------ views


def _organisation_row(organisation: Any, active_contacts: int = 0) -> dict[str, Any]:
    return {
        "id": organisation.id,
        "name": organisation.name,
        "kind": organisation.kind,
        "kind_words": kind_words(organisation.kind),
        "active_contacts": active_contacts,
        "href": organisation_href(organisation.id),
    }


def _contact_row(contact: Any, organisation_names: dict[str, str]) -> dict[str, Any]:
    return {
        "name": contact.name,
        "email": contact.email,
        "organisation": contact.organisation_id,
        "organisation_name": organisation_names.get(contact.organisation_id, contact.organisation_id),
        "organisation_href": organisation_href(contact.organisation_id),
        "active": contact.active,
        "href": contact_href(contact.email),
    }


def _fields_words(fields: dict[str, Any] | None, organisation_names: dict[str, str]) -> str:
    if not fields:
        return ""
    words = []
    if "name" in fields:
        words.append(f"Name: {fields['name']}")
    if "id" in fields:
        words.append(f"Id: {fields['id']}")
    if "kind" in fields:
        words.append(f"Kind: {kind_words(fields['kind'])}")
    if "email" in fields:
        words.append(f"Email: {fields['email']}")
    if "organisation" in fields:
        organisation = fields["organisation"]
        words.append(f"Organisation: {organisation_names.get(organisation, organisation)}")
    if "active" in fields:
        words.append("Active" if fields["active"] else "Inactive")
    return "; ".join(words)


def _history_rows(
    changes: list[Any], policy: Policy, organisation_names: dict[str, str]
) -> list[dict[str, str]]:
    """Newest first: what an admin looking at an organisation or a contact wants first."""
    return [
        {
            "when": when_words(c.at, policy),
            "who": "The command line (an import)" if c.channel == "import" else c.actor,
            "what": CHANGE_WORDS.get(c.kind, c.kind),
            "before": _fields_words(
                json.loads(c.before) if c.before is not None else None, organisation_names
            ),
            "after": _fields_words(json.loads(c.after), organisation_names),
        }
        for c in reversed(changes)
    ]


def _organisations(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """Every organisation, by name, with its number of active contacts; as plain values."""
    active: dict[str, int] = {}
    for contact in partners.list_contacts(session, actor):
        if contact.active:
            active[contact.organisation_id] = active.get(contact.organisation_id, 0) + 1
    rows = [_organisation_row(o, active.get(o.id, 0)) for o in partners.list_organisations(session, actor)]
    return sorted(rows, key=lambda r: (r["name"].casefold(), r["id"]))


@dataclass(frozen=True)
class OrganisationPage:
    """What an organisation's page shows of it, read before any change so a refusal can show it again."""

    organisation: dict[str, Any]
    contacts: list[dict[str, Any]]
    history: list[dict[str, str]]


def _organisation_page(
    session: Session, actor: Actor, organisation_id: str, policy: Policy
) -> OrganisationPage:
    organisation = partners.get_organisation(session, actor, organisation_id)
    names = {organisation.id: organisation.name}
    found = partners.list_contacts(session, actor, organisation.id)
    contacts = sorted(
        (_contact_row(c, names) for c in found), key=lambda r: (r["name"].casefold(), r["email"])
    )
    changes = partners.organisation_history(session, actor, organisation.id)
    # As plain values, read now: a refused change rolls the transaction back, which expires its rows.
    row = _organisation_row(organisation, sum(1 for c in contacts if c["active"]))
    return OrganisationPage(row, contacts, _history_rows(changes, policy, names))


@dataclass(frozen=True)
class ContactPage:
    """What a contact's page shows of them, and the organisations they may be moved to."""

    contact: dict[str, Any]
    organisations: list[dict[str, Any]]
    history: list[dict[str, str]]


def _contact_page(session: Session, actor: Actor, email: str, policy: Policy) -> ContactPage:
    contact = partners.get_contact(session, actor, email)
    organisations = [_organisation_row(o) for o in partners.list_organisations(session, actor)]
    organisations.sort(key=lambda r: (r["name"].casefold(), r["id"]))
    names = {o["id"]: o["name"] for o in organisations}
    changes = partners.contact_history(session, actor, contact.email)
    return ContactPage(_contact_row(contact, names), organisations, _history_rows(changes, policy, names))


def _shown_errors(errors: FormErrors | None) -> dict[str, Any]:
    return {
        "errors": errors.summary() if errors else None,
        "field_errors": errors.messages if errors else {},
    }


def _show_organisation(
    request: Request,
    page: OrganisationPage,
    status: int = 200,
    *,
    name: str | None = None,
    kind: str | None = None,
    errors: FormErrors | None = None,
    done: str | None = None,
    added: str | None = None,
) -> HTMLResponse:
    organisation = page.organisation
    banner = DONE_WORDS[done].format(name=organisation["name"]) if done in DONE_WORDS else None
    # Only a contact of this organisation: the address cannot put words of its own on the page.
    new = next((c for c in page.contacts if added and c["email"] == added.strip().lower()), None)
    return render(
        request,
        "web/organisation.html",
        status,
        title=organisation["name"],
        nav=NAV,
        organisation=organisation,
        contacts=page.contacts,
        history=page.history,
        name=organisation["name"] if name is None else name,
        kind_items=kind_items(organisation["kind"] if kind is None else kind),
        banner=banner,
        added=new,
        **_shown_errors(errors),
    )


def _show_new_organisation(
    request: Request,
    status: int = 200,
    *,
    organisation_id: str = "",
    name: str = "",
    kind: str = "",
    errors: FormErrors | None = None,
) -> HTMLResponse:
    return render(
        request,
        "web/organisation_new.html",
        status,
        title="Add an organisation",
        nav=NAV,
        organisation_id=organisation_id,
        name=name,
        kind_items=kind_items(kind),
        **_shown_errors(errors),
    )


def _show_contact(
    request: Request,
    page: ContactPage,
    status: int = 200,
    *,
    name: str | None = None,
    organisation: str | None = None,
    errors: FormErrors | None = None,
    done: str | None = None,
) -> HTMLResponse:
    contact = page.contact
    banner = DONE_WORDS[done].format(name=contact["name"]) if done in DONE_WORDS else None
    chosen = contact["organisation"] if organisation is None else organisation
    return render(
        request,
        "web/contact.html",
        status,
        title=contact["name"],
        nav=NAV,
        contact=contact,
        history=page.history,
        name=contact["name"] if name is None else name,
        organisation_items=organisation_items(page.organisations, chosen),
        banner=banner,
        **_shown_errors(errors),
    )


def _show_new_contact(
    request: Request,
    organisations: list[dict[str, Any]],
    status: int = 200,
    *,
    name: str = "",
    email: str = "",
    organisation: str = "",
    errors: FormErrors | None = None,
) -> HTMLResponse:
    back = next((o for o in organisations if o["id"] == organisation), None)
    return render(
        request,
        "web/contact_new.html",
        status,
        title="Add a contact",
        nav=NAV,
        name=name,
        email=email,
        organisation_items=organisation_items(organisations, organisation),
        back_href=back["href"] if back else "/organisations",
        **_shown_errors(errors),
    )


# ------------------------------------------------------------------------------------------ organisations


@router.get("/organisations")
async def organisations(
    request: Request,
    viewer: AdminDep,
    tx: TransactionDep,
    added: Annotated[str | None, Query(max_length=MAX_ORGANISATION_ID)] = None,
) -> HTMLResponse:
    rows = await tx.finish(_organisations, viewer)
    # Only an organisation that is there: the query cannot put words of its own on the page.
    new = next((r for r in rows if added and r["id"] == added.strip()), None)
    return render(
        request, "web/organisations.html", title="Organisations", nav=NAV, organisations=rows, added=new
    )


@router.get("/organisations/new")
async def new_organisation(request: Request, _: AdminDep) -> HTMLResponse:
    return _show_new_organisation(request)


@router.post("/organisations/new")
async def add_organisation(
    request: Request, viewer: AdminPosterDep, tx: TransactionDep, now: NowDep, settings: SettingsDep
) -> Response:
    form = await request.form()
    organisation_id, name, kind = _text(form, "id"), _text(form, "name"), _text(form, "kind")
    errors = FormErrors()
    if not organisation_id:
        errors.add("id", "Enter an id for the organisation")
    _check_name(name, errors, "organisation's")
    _check_kind(kind, errors)

    def again(status: int) -> HTMLResponse:
        return _show_new_organisation(
            request, status, organisation_id=organisation_id, name=name, kind=kind, errors=errors
        )

    if errors:
        return again(422)
    data = partners.OrganisationData(id=organisation_id, name=name, kind=kind)
    try:
        await tx.finish(partners.add_organisation, viewer, data, now, audit_key=settings.audit_key)
    except PartnerConflict:
        errors.add("id", f"There is already an organisation with the id {organisation_id}")
        return again(409)
    except InvalidInput as exc:
        _invalid(exc, errors, ("id", "name", "kind"), form)
        return again(422)
    return RedirectResponse("/organisations?" + urlencode({"added": organisation_id}), status_code=303)


@router.get("/organisations/{organisation_id}")
async def organisation(
    request: Request,
    organisation_id: OrganisationId,
    viewer: AdminDep,
    tx: TransactionDep,
    policy: PolicyDep,
    done: Annotated[str | None, Query(max_length=20)] = None,
    added: Annotated[str | None, Query(max_length=MAX_EMAIL)] = None,
) -> HTMLResponse:
    page = await tx.finish(_organisation_page, viewer, organisation_id, policy)
    return _show_organisation(request, page, done=done, added=added)


@router.post("/organisations/{organisation_id}")
async def change_organisation(
    request: Request,
    organisation_id: OrganisationId,
    viewer: AdminPosterDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    settings: SettingsDep,
) -> Response:
    page = await tx.run(_organisation_page, viewer, organisation_id, policy)
    form = await request.form()
    name, kind = _text(form, "name"), _text(form, "kind")
    errors = FormErrors()
    _check_name(name, errors, "organisation's")
    _check_kind(kind, errors)
    if errors:
        return _show_organisation(request, page, 422, name=name, kind=kind, errors=errors)
    try:
        await tx.finish(
            partners.update_organisation,
            viewer,
            page.organisation["id"],
            now,
            name=name,
            kind=kind,
            audit_key=settings.audit_key,
        )
    except InvalidInput as exc:
        _invalid(exc, errors, ("name", "kind"), form)
        return _show_organisation(request, page, 422, name=name, kind=kind, errors=errors)
    before = page.organisation
    unchanged = name == before["name"] and kind == before["kind"]
    done = "unchanged" if unchanged else "saved"
    return RedirectResponse(before["href"] + "?" + urlencode({"done": done}), status_code=303)


# ------------------------------------------------------------------------------------------ contacts


@router.get("/contacts/new")
async def new_contact(
    request: Request,
    viewer: AdminDep,
    tx: TransactionDep,
    organisation: Annotated[str | None, Query(max_length=MAX_ORGANISATION_ID)] = None,
) -> HTMLResponse:
    found = await tx.finish(_organisations, viewer)
    return _show_new_contact(request, found, organisation=(organisation or "").strip())


@router.post("/contacts/new")
async def add_contact(
    request: Request, viewer: AdminPosterDep, tx: TransactionDep, now: NowDep, settings: SettingsDep
) -> Response:
    # Read first, as plain values: a refusal rolls back, and the form shows the organisations again.
    found = await tx.run(_organisations, viewer)
    form = await request.form()
    name, email, organisation = _text(form, "name"), _text(form, "email"), _text(form, "organisation")
    errors = FormErrors()
    _check_name(name, errors, "contact's")
    if not email:
        errors.add("email", "Enter an email address")
    elif len(email) > MAX_EMAIL:
        errors.add("email", BAD_EMAIL)
    if not organisation:
        errors.add("organisation", "Select the contact's organisation")

    def again(status: int) -> HTMLResponse:
        return _show_new_contact(
            request, found, status, name=name, email=email, organisation=organisation, errors=errors
        )

    if errors:
        return again(422)
    data = partners.ContactData(name=name, email=email, organisation=organisation)
    try:
        contact = await tx.finish(partners.add_contact, viewer, data, now, audit_key=settings.audit_key)
    except AddressIsStaff as exc:
        errors.add("email", str(exc))
        return again(409)
    except PartnerConflict:
        errors.add("email", f"{email.lower()} is already an external contact")
        return again(409)
    except InvalidInput as exc:
        _invalid(exc, errors, ("name", "email", "organisation"), form)
        return again(422)
    query = urlencode({"added": contact.email})
    return RedirectResponse(f"{organisation_href(organisation)}?{query}", status_code=303)


@router.get("/contacts/{email}")
async def contact(
    request: Request,
    email: Email,
    viewer: AdminDep,
    tx: TransactionDep,
    policy: PolicyDep,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    page = await tx.finish(_contact_page, viewer, email, policy)
    return _show_contact(request, page, done=done)


@router.post("/contacts/{email}")
async def change_contact(
    request: Request,
    email: Email,
    viewer: AdminPosterDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    settings: SettingsDep,
) -> Response:
    page = await tx.run(_contact_page, viewer, email, policy)
    form = await request.form()
    name, organisation = _text(form, "name"), _text(form, "organisation")
    errors = FormErrors()
    _check_name(name, errors, "contact's")
    if not organisation:
        errors.add("organisation", "Select the contact's organisation")
    if errors:
        return _show_contact(request, page, 422, name=name, organisation=organisation, errors=errors)
    try:
        await tx.finish(
            partners.update_contact,
            viewer,
            page.contact["email"],
            now,
            name=name,
            organisation=organisation,
            active=None,
            audit_key=settings.audit_key,
        )
    except PartnerConflict as exc:
        # Moved while they hold a stage of an open dispute.
        errors.add("organisation", _sentence(str(exc)))
        return _show_contact(request, page, 409, name=name, organisation=organisation, errors=errors)
    except InvalidInput as exc:
        _invalid(exc, errors, ("name", "organisation"), form)
        return _show_contact(request, page, 422, name=name, organisation=organisation, errors=errors)
    before = page.contact
    unchanged = name == before["name"] and organisation == before["organisation"]
    return _after(page, "unchanged" if unchanged else "saved")


@router.post("/contacts/{email}/deactivate")
async def deactivate_contact(
    request: Request,
    email: Email,
    viewer: AdminPosterDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    settings: SettingsDep,
) -> Response:
    return await _set_active(request, email, False, viewer, tx, policy, now, settings.audit_key)


@router.post("/contacts/{email}/reactivate")
async def reactivate_contact(
    request: Request,
    email: Email,
    viewer: AdminPosterDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    settings: SettingsDep,
) -> Response:
    return await _set_active(request, email, True, viewer, tx, policy, now, settings.audit_key)


async def _set_active(
    request: Request,
    email: str,
    active: bool,
    viewer: Actor,
    tx: Transaction,
    policy: Policy,
    now: datetime,
    audit_key: str,
) -> Response:
    page = await tx.run(_contact_page, viewer, email, policy)
    try:
        await tx.finish(
            partners.update_contact,
            viewer,
            page.contact["email"],
            now,
            name=None,
            organisation=None,
            active=active,
            audit_key=audit_key,
        )
    except PartnerConflict as exc:
        # A contact who owns a stage of an open dispute, or is named for a later one, stays active.
        errors = FormErrors()
        errors.add("deactivate" if not active else "reactivate", _sentence(str(exc)))
        return _show_contact(request, page, 409, errors=errors)
    return _after(page, "reactivated" if active else "deactivated")


def _after(page: ContactPage, done: str) -> RedirectResponse:
    return RedirectResponse(page.contact["href"] + "?" + urlencode({"done": done}), status_code=303)


def _sentence(message: str) -> str:
    # Not capitalised: the use case's words begin with the contact's address.
    text = message.strip()
    return text if text.endswith(".") else text + "."
