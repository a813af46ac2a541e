"""The staff directory's pages (SPEC section 9), for admins: the directory, adding a person, and each
person's page to change their name and roles, deactivate or reactivate them, and read their history.

Every change goes through the same use cases as `/api/v1/people`, in the request's one transaction. A
refusal (the last admin, a role in use, an email already there, a field that cannot be used) re-shows the
form with the person's own values, a GOV.UK error summary and the message at the field; a change that is
made answers with a redirect to a page that says so (post, redirect, get)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from api.deps import NowDep, PolicyDep, SettingsDep, Transaction, TransactionDep
from api.web.forms import MAX_EMAIL, MAX_NAME
from api.web.render import render
from api.web.signin import AdminDep, AdminPosterDep
from api.web.views import when_words
from dispute_service import people
from dispute_service.access import Actor
from dispute_service.errors import AddressIsAContact, InvalidInput, PersonConflict
from states.policy import Policy
from states.vocabulary import ROLES

router = APIRouter(include_in_schema=False)


ROLE_WORDS = {
    "iro": "IRO",
    "team_manager": "Team manager",
    "head_of_corporate_parenting": "Head of corporate parenting",
    "head_of_service": "Head of service",
    "assistant_director": "Assistant director",
    "iro_manager": "IRO manager",
    "admin": "Admin",
}
ROLE_HINTS = {
    "iro": "Raises disputes and decides on them",
    "iro_manager": "Reads every dispute and the annual report",
    "admin": "Keeps this staff directory; reads every dispute and the annual report",
    "head_of_service": "Also reads the annual report",
    "assistant_director": "Also reads the annual report",
}
CHANGE_WORDS = {
    "added": "Added",
    "name_changed": "Name changed",
    "roles_changed": "Roles changed",
    "deactivated": "Deactivated",
    "reactivated": "Reactivated",
}
# What the page after a change says; the redirect names one of these, never words of its own.
DONE_WORDS = {
    "saved": "The changes to {name} have been saved.",
    "unchanged": "Nothing was changed: {name}'s details were already as sent.",
    "deactivated": "{name} has been deactivated and signed out. They can no longer sign in.",
    "reactivated": "{name} has been reactivated and can sign in again.",
}

Email = Annotated[str, Path(max_length=MAX_EMAIL)]
_EMAIL = TypeAdapter(EmailStr)


def role_words(role: str) -> str:
    return ROLE_WORDS.get(role, role.replace("_", " ").capitalize())


def person_href(email: str) -> str:
    return "/people/" + quote(email, safe="@")


# ------------------------------------------------------------------------------------------ forms


@dataclass
class FormErrors:
    """Each field's message, in the order of the form, and the summary that links to them."""

    messages: dict[str, str] = field(default_factory=dict)

    def add(self, field_id: str, message: str) -> None:
        self.messages.setdefault(field_id, message)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def summary(self) -> list[dict[str, str]]:
        return [{"text": m, "href": f"#{f}"} for f, m in self.messages.items()]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _roles(form: FormData) -> list[str]:
    return [r for r in form.getlist("roles") if isinstance(r, str)]


def _check_name(name: str, errors: FormErrors) -> None:
    if not name:
        errors.add("name", "Enter the person's name")
    elif len(name) > MAX_NAME:
        errors.add("name", f"Name must be {MAX_NAME} characters or fewer")


def _check_roles(roles: list[str], errors: FormErrors) -> None:
    if not roles:
        errors.add("roles", "Select at least one role")
    elif any(r not in ROLES for r in roles):
        errors.add("roles", "Select roles from the list")


def _check_email(email: str, errors: FormErrors) -> str:
    """The address as the directory keeps it (as the API's `EmailStr` normalises it)."""
    if not email:
        errors.add("email", "Enter an email address")
        return email
    try:
        if len(email) > MAX_EMAIL:
            raise ValueError(email)
        return _EMAIL.validate_python(email).lower()
    except (ValidationError, ValueError):
        errors.add("email", "Enter an email address in the correct format, like name@example.gov.uk")
        return email


def _invalid(exc: InvalidInput, errors: FormErrors, fields: tuple[str, ...]) -> None:
    """The use case's own refusal of a field, at that field when the form has it."""
    for name, message in exc.errors:
        errors.add(name if name in fields else fields[0], message[:1].upper() + message[1:])


def role_items(chosen: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "value": role,
            "text": role_words(role),
            "checked": role in chosen,
            **({"hint": {"text": ROLE_HINTS[role]}} if role in ROLE_HINTS else {}),
        }
        for role in ROLES
    ]


# ------------------------------------------------------------------------------------------ views


def _row(person: Any) -> dict[str, Any]:
    return {
        "name": person.name,
        "email": person.email,
        "roles": [role_words(r) for r in sorted(person.roles, key=_role_order)],
        "role_ids": list(person.roles),
        "active": person.active,
        "href": person_href(person.email),
    }


def _role_order(role: str) -> int:
    return ROLES.index(role) if role in ROLES else len(ROLES)


def _fields_words(fields: dict[str, Any] | None) -> str:
    if not fields:
        return ""
    words = []
    if "name" in fields:
        words.append(f"Name: {fields['name']}")
    if "email" in fields:
        words.append(f"Email: {fields['email']}")
    if "roles" in fields:
        roles = ", ".join(role_words(r) for r in sorted(fields["roles"], key=_role_order))
        words.append(f"Roles: {roles or 'none'}")
    if "active" in fields:
        words.append("Active" if fields["active"] else "Inactive")
    return "; ".join(words)


def _history_rows(changes: list[Any], policy: Policy) -> list[dict[str, str]]:
    """Newest first: what an admin looking at a person wants first."""
    return [
        {
            "when": when_words(c.at, policy),
            "who": "The command line (an import)" if c.channel == "import" else c.actor,
            "what": CHANGE_WORDS.get(c.kind, c.kind),
            "before": _fields_words(json.loads(c.before) if c.before is not None else None),
            "after": _fields_words(json.loads(c.after)),
        }
        for c in reversed(changes)
    ]


@dataclass(frozen=True)
class PersonPage:
    """What a person's page shows of them, read before any change so a refusal can show it again."""

    person: dict[str, Any]
    history: list[dict[str, str]]


def _person_page(session: Session, actor: Actor, email: str, policy: Policy) -> PersonPage:
    person = people.get_person(session, actor, email)
    changes = people.person_history(session, actor, email)
    # As plain values, read now: a refused change rolls the transaction back, which expires its rows.
    return PersonPage(_row(person), _history_rows(changes, policy))


def _show_person(
    request: Request,
    page: PersonPage,
    status: int = 200,
    *,
    name: str | None = None,
    roles: list[str] | None = None,
    errors: FormErrors | None = None,
    done: str | None = None,
) -> HTMLResponse:
    person = page.person
    banner = DONE_WORDS[done].format(name=person["name"]) if done in DONE_WORDS else None
    return render(
        request,
        "web/person.html",
        status,
        title=person["name"],
        nav="people",
        person=person,
        history=page.history,
        name=person["name"] if name is None else name,
        role_items=role_items(person["role_ids"] if roles is None else roles),
        errors=errors.summary() if errors else None,
        field_errors=errors.messages if errors else {},
        banner=banner,
    )


def _show_new(
    request: Request,
    status: int = 200,
    *,
    name: str = "",
    email: str = "",
    roles: list[str] | None = None,
    errors: FormErrors | None = None,
) -> HTMLResponse:
    return render(
        request,
        "web/person_new.html",
        status,
        title="Add a person",
        nav="people",
        name=name,
        email=email,
        role_items=role_items(roles or []),
        errors=errors.summary() if errors else None,
        field_errors=errors.messages if errors else {},
    )


# ------------------------------------------------------------------------------------------ the routes


@router.get("/people")
async def directory(
    request: Request,
    viewer: AdminDep,
    tx: TransactionDep,
    added: Annotated[str | None, Query(max_length=MAX_EMAIL)] = None,
) -> HTMLResponse:
    found = await tx.finish(people.list_people, viewer)
    rows = [_row(p) for p in found]
    # Only a person who is in the directory: the address cannot put words of its own on the page.
    new = next((r for r in rows if added and r["email"] == added.strip().lower()), None)
    return render(
        request,
        "web/people.html",
        title="People",
        nav="people",
        people=rows,
        added=new,
    )


@router.get("/people/new")
async def new_person(request: Request, _: AdminDep) -> HTMLResponse:
    return _show_new(request)


@router.post("/people/new")
async def add_person(
    request: Request,
    viewer: AdminPosterDep,
    tx: TransactionDep,
    now: NowDep,
    settings: SettingsDep,
) -> Response:
    form = await request.form()
    name, email, roles = _text(form, "name"), _text(form, "email"), _roles(form)
    errors = FormErrors()
    _check_name(name, errors)
    email = _check_email(email, errors)
    _check_roles(roles, errors)
    if errors:
        return _show_new(request, 422, name=name, email=email, roles=roles, errors=errors)
    data = people.PersonData(name=name, email=email, roles=roles)
    try:
        await tx.finish(people.add_person, viewer, data, now, audit_key=settings.audit_key)
    except AddressIsAContact as exc:
        errors.add("email", str(exc))
        return _show_new(request, 409, name=name, email=email, roles=roles, errors=errors)
    except PersonConflict:
        errors.add("email", f"{email} is already in the staff directory")
        return _show_new(request, 409, name=name, email=email, roles=roles, errors=errors)
    except InvalidInput as exc:
        _invalid(exc, errors, ("name", "email", "roles"))
        return _show_new(request, 422, name=name, email=email, roles=roles, errors=errors)
    return RedirectResponse("/people?" + urlencode({"added": email}), status_code=303)


@router.get("/people/{email}")
async def person(
    request: Request,
    email: Email,
    viewer: AdminDep,
    tx: TransactionDep,
    policy: PolicyDep,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    page = await tx.finish(_person_page, viewer, email, policy)
    return _show_person(request, page, done=done)


@router.post("/people/{email}")
async def change_person(
    request: Request,
    email: Email,
    viewer: AdminPosterDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    settings: SettingsDep,
) -> Response:
    page = await tx.run(_person_page, viewer, email, policy)
    form = await request.form()
    name, roles = _text(form, "name"), _roles(form)
    errors = FormErrors()
    _check_name(name, errors)
    _check_roles(roles, errors)
    if errors:
        return _show_person(request, page, 422, name=name, roles=roles, errors=errors)
    try:
        await tx.finish(
            people.update_person,
            viewer,
            email,
            now,
            name=name,
            roles=roles,
            active=None,
            audit_key=settings.audit_key,
        )
    except PersonConflict as exc:
        errors.add("roles", _sentence(str(exc)))
        return _show_person(request, page, 409, name=name, roles=roles, errors=errors)
    except InvalidInput as exc:
        _invalid(exc, errors, ("roles", "name"))
        return _show_person(request, page, 422, name=name, roles=roles, errors=errors)
    before = page.person
    unchanged = name == before["name"] and sorted(set(roles)) == sorted(before["role_ids"])
    return _after(page, "unchanged" if unchanged else "saved")


@router.post("/people/{email}/deactivate")
async def deactivate(
    request: Request,
    email: Email,
    viewer: AdminPosterDep,
    tx: TransactionDep,
    policy: PolicyDep,
    now: NowDep,
    settings: SettingsDep,
) -> Response:
    return await _set_active(request, email, False, viewer, tx, policy, now, settings.audit_key)


@router.post("/people/{email}/reactivate")
async def reactivate(
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
    page = await tx.run(_person_page, viewer, email, policy)
    try:
        # Deactivation ends every session of the person in this same transaction (people.update_person).
        await tx.finish(
            people.update_person,
            viewer,
            email,
            now,
            name=None,
            roles=None,
            active=active,
            audit_key=audit_key,
        )
    except PersonConflict as exc:
        errors = FormErrors()
        errors.add("deactivate" if not active else "reactivate", _sentence(str(exc)))
        return _show_person(request, page, 409, errors=errors)
    return _after(page, "reactivated" if active else "deactivated")


def _after(page: PersonPage, done: str) -> RedirectResponse:
    return RedirectResponse(page.person["href"] + "?" + urlencode({"done": done}), status_code=303)


def _sentence(message: str) -> str:
    text = message.strip()
    return text if text.endswith(".") else text + "."
