"""The staff directory: who may act, and in which roles. Admins keep it through the API; operators load it
from a CSV. Every change is recorded in the people changes (`people_changes`), chained under the audit
key, which each core that changes the directory is given explicitly."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service import people_changes, trails, web_sessions
from dispute_service.access import Actor, require_admin
from dispute_service.errors import AddressIsAContact, InvalidInput, PersonConflict, PersonNotFound
from dispute_service.models import Contact, Dispute, Person, PersonChange
from dispute_service.validation import email_address
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


def sign_in_choices(session: Session) -> list[tuple[str, str, list[str]]]:
    """Everyone active in the directory, for the demo sign-in page's buttons: name, email, sorted roles."""
    rows = session.execute(
        select(Person.name, Person.email, Person.roles).where(Person.active.is_(True)).order_by(Person.id)
    ).all()
    return [(r.name, r.email, sorted(r.roles)) for r in rows]


def active_holders(session: Session, role: str) -> list[tuple[str, str]]:
    """(name, email) of everyone active who holds `role`: the choices a form offers, such as the team
    manager a dispute is raised with."""
    rows = session.execute(
        select(Person.name, Person.email, Person.roles).where(Person.active.is_(True)).order_by(Person.name)
    ).all()
    return [(r.name, r.email) for r in rows if role in r.roles]


def get_person(session: Session, actor: Actor, email: str) -> Person:
    """One person of the directory, by email whatever its case; for admins."""
    require_admin(actor, "read people")
    email = email.strip().lower()
    person = session.scalar(select(Person).where(Person.email == email))
    if person is None:
        raise PersonNotFound(email)
    return person


def add_person(session: Session, actor: Actor, data: PersonData, now: datetime, *, audit_key: str) -> Person:
    require_admin(actor, "add people")
    email = data.email.strip().lower()
    _check_roles(data.roles)
    lock_directory(session)
    if session.scalar(select(Person.id).where(Person.email == email)) is not None:
        raise PersonConflict(f"{email} is already in the staff directory; PATCH it to change it")
    organisation = session.scalar(select(Contact.organisation_id).where(Contact.email == email))
    if organisation is not None:
        raise AddressIsAContact(email, organisation)
    person = Person(
        email=email,
        name=data.name.strip(),
        roles=sorted(set(data.roles)),
        active=data.active,
        created_at=now,
        updated_at=now,
    )
    session.add(person)
    people_changes.record(
        session,
        audit_key,
        actor=actor.email,
        channel=actor.channel,
        person_email=email,
        kind=people_changes.ADDED,
        before=None,
        after=_fields(person),
        now=now,
    )
    return person


def person_history(session: Session, actor: Actor, email: str) -> list[PersonChange]:
    """Every change to one person, oldest first; for admins."""
    require_admin(actor, "read the history of people")
    email = email.strip().lower()
    if session.scalar(select(Person.id).where(Person.email == email)) is None:
        raise PersonNotFound(email)
    return people_changes.history(session, email)


def update_person(
    session: Session,
    actor: Actor,
    email: str,
    now: datetime,
    *,
    name: str | None,
    roles: list[str] | None,
    active: bool | None,
    audit_key: str,
) -> Person:
    require_admin(actor, "change people")
    email = email.strip().lower()
    if roles is not None:
        _check_roles(roles)
    lock_directory(session)
    person = session.scalar(select(Person).where(Person.email == email).with_for_update())
    if person is None:
        raise PersonNotFound(email)
    holding = Holding(
        frozenset(roles if roles is not None else person.roles),
        active if active is not None else person.active,
    )
    refusals = refusals_for(session, {email: holding})
    if refusals:
        _, message, references = refusals[0]
        raise PersonConflict(message, references)
    changes: list[tuple[people_changes.ChangeKind, dict[str, Any], dict[str, Any]]] = []
    if name is not None and name.strip() != person.name:
        changes.append((people_changes.NAME_CHANGED, {"name": person.name}, {"name": name.strip()}))
        person.name = name.strip()
    if roles is not None and sorted(set(roles)) != sorted(person.roles):
        changes.append(
            (people_changes.ROLES_CHANGED, {"roles": sorted(person.roles)}, {"roles": sorted(set(roles))})
        )
        person.roles = sorted(set(roles))
    if active is not None and active != person.active:
        kind = people_changes.REACTIVATED if active else people_changes.DEACTIVATED
        changes.append((kind, {"active": person.active}, {"active": active}))
        person.active = active
        if not active:
            # At once, not when their cookie next fails a check.
            web_sessions.end_all_for(session, email, now)
    person.updated_at = now
    for kind, before, after in changes:
        people_changes.record(
            session,
            audit_key,
            actor=actor.email,
            channel=actor.channel,
            person_email=email,
            kind=kind,
            before=before,
            after=after,
            now=now,
        )
    return person


def _fields(person: Person) -> dict[str, Any]:
    return {
        "name": person.name,
        "email": person.email,
        "roles": sorted(person.roles),
        "active": person.active,
    }


@dataclass(frozen=True)
class Holding:
    """What a person holds: their roles, and whether they may sign in at all."""

    roles: frozenset[str]
    active: bool

    def held(self) -> frozenset[str]:
        return self.roles if self.active else frozenset()


def lock_directory(session: Session) -> None:
    """Serialise changes to the staff directory. Whether a role is still held by someone else is a read of
    other people's rows, so two demotions at once could each leave the other as the last holder; and each
    change is chained to the one before. The chain's lock covers both."""
    people_changes.lock(session)


def refusals_for(session: Session, changes: dict[str, Holding]) -> list[tuple[str, str, list[str]]]:
    """The changes among `changes` (email: what they will hold) that would take away a role in use, each as
    (email, why, the disputes it is in use for). A role is in use when the person is the named owner of a
    current stage through it, the last active holder of a role that owns a current stage, or (iro) the IRO
    of an open dispute; and the last active admin keeps the admin role."""
    everyone = {p.email: Holding(frozenset(p.roles), p.active) for p in session.scalars(select(Person)).all()}
    before = {email: everyone[email] for email in changes if email in everyone}
    after = {**everyone, **changes}
    lost = {email: before[email].held() - after[email].held() for email in before}
    lost = {email: roles for email, roles in lost.items() if roles}
    if not lost:
        return []

    def holders(role: str) -> set[str]:
        return {email for email, holding in after.items() if role in holding.held()}

    open_states = [s.value for s in OPEN_STATES]
    emails = sorted(lost)
    unheld = sorted({role for roles in lost.values() for role in roles if not holders(role)})
    named = session.execute(
        select(Dispute.reference, Dispute.owner_email, Dispute.owner_role).where(
            Dispute.state.in_(open_states), Dispute.owner_email.in_(emails)
        )
    ).all()
    as_iro = session.execute(
        select(Dispute.reference, Dispute.iro_email).where(
            Dispute.state.in_(open_states), Dispute.iro_email.in_(emails)
        )
    ).all()
    role_owned = session.execute(
        select(Dispute.reference, Dispute.owner_role).where(
            Dispute.state.in_(open_states), Dispute.owner_email.is_(None), Dispute.owner_role.in_(unheld)
        )
    ).all()

    refusals: list[tuple[str, str, list[str]]] = []
    for email in emails:
        roles = lost[email]
        verb = "be deactivated" if not after[email].active else "lose the role(s) " + ", ".join(sorted(roles))
        if "admin" in roles and not holders("admin"):
            refusals.append(
                (
                    email,
                    f"{email} cannot {verb}: they are the last active admin; "
                    "make someone else an admin first",
                    [],
                )
            )
            continue
        uses: dict[str, set[str]] = {}
        for reference, owner, role in named:
            if owner == email and role in roles:
                uses.setdefault(f"they own the current {role} stage of", set()).add(reference)
        if "iro" in roles:
            for reference, iro in as_iro:
                if iro == email:
                    uses.setdefault("they are the IRO of", set()).add(reference)
        for reference, role in role_owned:
            if role in roles:
                uses.setdefault(
                    f"they are the last active holder of the {role} role, which owns the current stage of",
                    set(),
                ).add(reference)
        if uses:
            references = sorted(set().union(*uses.values()))
            why = "; ".join(f"{what} {', '.join(sorted(refs))}" for what, refs in uses.items())
            refusals.append(
                (
                    email,
                    f"{email} cannot {verb}: {why}. Reassign them first, or give the role to someone else",
                    references,
                )
            )
    return refusals


def import_people(session: Session, path: Path, now: datetime, *, audit_key: str) -> tuple[int, int]:
    """Load a CSV with columns name, email, roles (separated by ';'). All or nothing; its changes are
    recorded as the command line's.

    Returns (added, updated).
    """
    # Locked before the file is checked against the contacts, so none can be added at a row's address
    # between the check and the commit.
    lock_directory(session)
    contacts: dict[str, str] = dict(session.execute(select(Contact.email, Contact.organisation_id)).all())
    rows = _read_people_csv(path, contacts)
    added = updated = 0
    existing = {p.email: p for p in session.scalars(select(Person)).all()}
    # A file is no way round the rules of the API: it may not take away a role in use either.
    refusals = refusals_for(
        session,
        {
            row.email: Holding(
                frozenset(row.roles), existing[row.email].active if row.email in existing else row.active
            )
            for row in rows
        },
    )
    if refusals:
        raise InvalidInput([(email, message) for email, message, _ in refusals])
    changes: list[tuple[str, people_changes.ChangeKind, dict[str, Any] | None, dict[str, Any]]] = []
    for row in rows:
        person = existing.get(row.email)
        if person is None:
            person = Person(
                email=row.email,
                name=row.name,
                roles=row.roles,
                active=row.active,
                created_at=now,
                updated_at=now,
            )
            session.add(person)
            changes.append((row.email, people_changes.ADDED, None, _fields(person)))
            added += 1
        else:
            if row.name != person.name:
                changes.append(
                    (row.email, people_changes.NAME_CHANGED, {"name": person.name}, {"name": row.name})
                )
            if sorted(row.roles) != sorted(person.roles):
                changes.append(
                    (
                        row.email,
                        people_changes.ROLES_CHANGED,
                        {"roles": sorted(person.roles)},
                        {"roles": sorted(row.roles)},
                    )
                )
            person.name, person.roles, person.updated_at = row.name, row.roles, now
            updated += 1
    for email, kind, before, after in changes:
        people_changes.record(
            session,
            audit_key,
            actor=people_changes.CLI_ACTOR,
            channel=trails.IMPORT_CHANNEL,
            person_email=email,
            kind=kind,
            before=before,
            after=after,
            now=now,
        )
    return added, updated


def _read_people_csv(path: Path, contacts: dict[str, str]) -> list[PersonData]:
    """The file's rows, or every bad row named by its line; `contacts` (email: organisation id) are the
    addresses no row may take."""
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
            email, problem = email_address(raw.get("email") or "")
            if problem is not None:
                errors.append((f"line {line}", problem))
            elif email in seen:
                errors.append((f"line {line}", f"{email} appears twice"))
            elif email in contacts:
                errors.append((f"line {line}", str(AddressIsAContact(email, contacts[email]))))
            unknown = [r for r in roles if r not in ROLES]
            if not roles or unknown:
                errors.append((f"line {line}", f"roles must be some of {', '.join(ROLES)} separated by ';'"))
            seen.add(email)
            rows.append(PersonData(name=name, email=email, roles=sorted(set(roles))))
    if errors:
        raise InvalidInput(errors)
    return rows


def _check_roles(roles: Iterable[str]) -> None:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise InvalidInput([("roles", f"unknown {', '.join(unknown)}; allowed: {', '.join(ROLES)}")])
