"""The staff directory: who may act, and in which roles. Admins keep it through the API; operators load it
from a CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dispute_service.access import Actor, require_admin
from dispute_service.errors import InvalidInput, PersonConflict, PersonNotFound
from dispute_service.models import Dispute, Person
from states.vocabulary import OPEN_STATES, ROLES


@dataclass(frozen=True)
class PersonData:
    name: str
    email: str
    roles: list[str]
    active: bool = True


def list_people(session: Session, actor: Actor) -> list[Person]:
    require_admin(actor, "list people")
    return list(session.scalars(select(Person).order_by(Person.email)).all())


def add_person(session: Session, actor: Actor, data: PersonData, now: datetime) -> Person:
    require_admin(actor, "add people")
    email = data.email.strip().lower()
    _check_roles(data.roles)
    if session.scalar(select(Person.id).where(Person.email == email)) is not None:
        raise PersonConflict(f"{email} is already in the staff directory; PATCH it to change it")
    person = Person(
        email=email,
        name=data.name.strip(),
        roles=sorted(set(data.roles)),
        active=data.active,
        created_at=now,
        updated_at=now,
    )
    session.add(person)
    return person


def update_person(
    session: Session,
    actor: Actor,
    email: str,
    now: datetime,
    *,
    name: str | None,
    roles: list[str] | None,
    active: bool | None,
) -> Person:
    require_admin(actor, "change people")
    email = email.strip().lower()
    if roles is not None:
        _check_roles(roles)
    person = session.scalar(select(Person).where(Person.email == email).with_for_update())
    if person is None:
        raise PersonNotFound(email)
    if active is False and person.active:
        _refuse_if_holding_open_work(session, email)
    if name is not None:
        person.name = name.strip()
    if roles is not None:
        person.roles = sorted(set(roles))
    if active is not None:
        person.active = active
    person.updated_at = now
    return person


def _refuse_if_holding_open_work(session: Session, email: str) -> None:
    held = session.scalars(
        select(Dispute.reference)
        .where(Dispute.state.in_([s.value for s in OPEN_STATES]))
        .where(or_(Dispute.owner_email == email, Dispute.iro_email == email))
        .order_by(Dispute.reference)
    ).all()
    if held:
        raise PersonConflict(
            f"{email} still owns a stage or is the IRO of open disputes ({', '.join(held)}); "
            "reassign them first",
            held,
        )


def import_people(session: Session, path: Path, now: datetime) -> tuple[int, int]:
    """Load a CSV with columns name, email, roles (separated by ';'). All or nothing.

    Returns (added, updated).
    """
    rows = _read_people_csv(path)
    added = updated = 0
    existing = {p.email: p for p in session.scalars(select(Person)).all()}
    for row in rows:
        person = existing.get(row.email)
        if person is None:
            session.add(
                Person(
                    email=row.email,
                    name=row.name,
                    roles=row.roles,
                    active=row.active,
                    created_at=now,
                    updated_at=now,
                )
            )
            added += 1
        else:
            person.name, person.roles, person.updated_at = row.name, row.roles, now
            updated += 1
    return added, updated


def _read_people_csv(path: Path) -> list[PersonData]:
    errors: list[tuple[str, str]] = []
    rows: list[PersonData] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"name", "email", "roles"} - set(reader.fieldnames or [])
        if missing:
            raise InvalidInput([("header", f"missing column(s): {', '.join(sorted(missing))}")])
        seen: set[str] = set()
        for raw in reader:
            # The line the record starts on, as an editor shows it: a quoted cell may hold line breaks.
            line = reader.line_num - sum(v.count("\n") for v in raw.values() if isinstance(v, str))
            roles = [r.strip() for r in (raw.get("roles") or "").split(";") if r.strip()]
            name = (raw.get("name") or "").strip()
            if not name:
                errors.append((f"line {line}", "name is empty"))
            email, problem = _email(raw.get("email") or "")
            if problem is not None:
                errors.append((f"line {line}", problem))
            elif email in seen:
                errors.append((f"line {line}", f"{email} appears twice"))
            unknown = [r for r in roles if r not in ROLES]
            if not roles or unknown:
                errors.append((f"line {line}", f"roles must be some of {', '.join(ROLES)} separated by ';'"))
            seen.add(email)
            rows.append(PersonData(name=name, email=email, roles=sorted(set(roles))))
    if errors:
        raise InvalidInput(errors)
    return rows


# The API's own type, so an imported address is checked and normalised exactly as one added over the API:
# one address, no line breaks (an address ends up in an email's To header).
_EMAIL = TypeAdapter(EmailStr)


def _email(text: str) -> tuple[str, str | None]:
    """(the address as the directory keeps it, None), or (text, why it is not one address)."""
    try:
        return _EMAIL.validate_python(text.strip()).lower(), None
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("value is not a valid email address: ")
        return text, f"email {text!r} is not one valid email address: {reason}"


def _check_roles(roles: Iterable[str]) -> None:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise InvalidInput([("roles", f"unknown {', '.join(unknown)}; allowed: {', '.join(ROLES)}")])
