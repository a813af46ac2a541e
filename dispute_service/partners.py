"""Organisations outside the council (partner agencies, other local authorities) and their external contacts
(SPEC 10). Admins keep them through the API; operators load them from CSV files. Every change is recorded in
the partner changes (`partner_changes`), chained under the audit key, which each core that changes them is
given explicitly, as the staff directory's are.

A contact is not a person of the staff directory: they hold no role and never sign in, so `authenticate`
(which reads only `people`) cannot find one. A contact's address is never also a staff address; this module
checks one way and `people` the other, both under the directory's lock, so that neither can slip in between
the other's check and its commit.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service import partner_changes, trails
from dispute_service.access import Actor, require_admin
from dispute_service.errors import (
    AddressIsStaff,
    ContactNotFound,
    InvalidInput,
    OrganisationNotFound,
    PartnerConflict,
)
from dispute_service.models import Contact, Dispute, Organisation, PartnerChange, Person
from dispute_service.partner_changes import (
    CONTACT,
    ORGANISATION,
    ChangeKind,
    contact_fields,
    organisation_fields,
)
from dispute_service.people import lock_directory
from dispute_service.validation import email_address
from states.policy import OWN_LADDER_ID
from states.vocabulary import MAX_ORGANISATION_ID, OPEN_STATES, ORGANISATION_ID_PATTERN, ORGANISATION_KINDS

MAX_NAME = 200
ORGANISATION_COLUMNS = ("id", "name", "kind")
CONTACT_COLUMNS = ("name", "email", "organisation")


@dataclass(frozen=True)
class OrganisationData:
    id: str
    name: str
    kind: str


@dataclass(frozen=True)
class ContactData:
    name: str
    email: str
    organisation: str
    active: bool = True


# What one change did to one organisation or contact: (which kind, its id or email, the kind of change, the
# changed fields before, after). Collected, then recorded in order by `_record`.
Change = tuple[partner_changes.SubjectKind, str, ChangeKind, dict[str, Any] | None, dict[str, Any]]


def _lock(session: Session) -> None:
    """The directory's lock (a contact's address is checked against the staff's), then the partner changes'
    own; always in that order, so that no two writers wait on each other."""
    lock_directory(session)
    partner_changes.lock(session)


def _record(
    session: Session, audit_key: str, actor: str, channel: str, changes: list[Change], now: datetime
) -> None:
    for subject_kind, subject_id, kind, before, after in changes:
        partner_changes.record(
            session,
            audit_key,
            actor=actor,
            channel=channel,
            subject_kind=subject_kind,
            subject_id=subject_id,
            kind=kind,
            before=before,
            after=after,
            now=now,
        )


def _changed(
    subject_kind: partner_changes.SubjectKind,
    subject_id: str,
    kind: ChangeKind,
    field: str,
    was: object,
    given: object | None,
) -> list[Change]:
    """The change setting `field` to `given` makes, if any: nothing is recorded for a value not given, or
    one that is already so."""
    if given is None or given == was:
        return []
    return [(subject_kind, subject_id, kind, {field: was}, {field: given})]


def _organisation_changes(organisation: Organisation, name: str | None, kind: str | None) -> list[Change]:
    key = (ORGANISATION, organisation.id)
    return [
        *_changed(*key, partner_changes.NAME_CHANGED, "name", organisation.name, name),
        *_changed(*key, partner_changes.KIND_CHANGED, "kind", organisation.kind, kind),
    ]


def _contact_changes(
    contact: Contact, name: str | None, organisation: str | None, active: bool | None
) -> list[Change]:
    key = (CONTACT, contact.email)
    switched = partner_changes.REACTIVATED if active else partner_changes.DEACTIVATED
    return [
        *_changed(*key, partner_changes.NAME_CHANGED, "name", contact.name, name),
        *_changed(
            *key, partner_changes.ORGANISATION_CHANGED, "organisation", contact.organisation_id, organisation
        ),
        *_changed(*key, switched, "active", contact.active, active),
    ]


# --- organisations -----------------------------------------------------------------------------------------


def list_organisations(session: Session, actor: Actor) -> list[Organisation]:
    require_admin(actor, "list organisations")
    return list(session.scalars(select(Organisation).order_by(Organisation.id)).all())


def get_organisation(session: Session, actor: Actor, organisation_id: str) -> Organisation:
    """One organisation, by its id; for admins."""
    require_admin(actor, "read organisations")
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise OrganisationNotFound(organisation_id)
    return organisation


def add_organisation(
    session: Session, actor: Actor, data: OrganisationData, now: datetime, *, audit_key: str
) -> Organisation:
    require_admin(actor, "add organisations")
    problems: list[tuple[str, str]] = []
    _check_id(problems, "id", data.id)
    _check_name(problems, "name", data.name)
    _check_kind(problems, "kind", data.kind)
    if problems:
        raise InvalidInput(problems)
    _lock(session)
    if session.get(Organisation, data.id) is not None:
        raise PartnerConflict(f"the organisation {data.id} already exists; PATCH it to change it")
    organisation = Organisation(
        id=data.id, name=data.name.strip(), kind=data.kind, created_at=now, updated_at=now
    )
    session.add(organisation)
    _record(
        session,
        audit_key,
        actor.email,
        actor.channel,
        [(ORGANISATION, organisation.id, partner_changes.ADDED, None, organisation_fields(organisation))],
        now,
    )
    return organisation


def update_organisation(
    session: Session,
    actor: Actor,
    organisation_id: str,
    now: datetime,
    *,
    name: str | None,
    kind: str | None,
    audit_key: str,
) -> Organisation:
    require_admin(actor, "change organisations")
    problems: list[tuple[str, str]] = []
    if name is not None:
        _check_name(problems, "name", name)
    if kind is not None:
        _check_kind(problems, "kind", kind)
    if problems:
        raise InvalidInput(problems)
    _lock(session)
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise OrganisationNotFound(organisation_id)
    name = name.strip() if name is not None else None
    changes = _organisation_changes(organisation, name, kind)
    if name is not None:
        organisation.name = name
    if kind is not None:
        organisation.kind = kind
    organisation.updated_at = now
    _record(session, audit_key, actor.email, actor.channel, changes, now)
    return organisation


def organisation_history(session: Session, actor: Actor, organisation_id: str) -> list[PartnerChange]:
    """Every change to one organisation, oldest first; for admins."""
    require_admin(actor, "read the history of organisations")
    if not _organisation_exists(session, organisation_id):
        raise OrganisationNotFound(organisation_id)
    return partner_changes.history(session, ORGANISATION, organisation_id)


# --- contacts ----------------------------------------------------------------------------------------------


def list_contacts(session: Session, actor: Actor, organisation: str | None = None) -> list[Contact]:
    """Every contact, or one organisation's, by email."""
    require_admin(actor, "list contacts")
    query = select(Contact).order_by(Contact.email)
    if organisation is not None:
        query = query.where(Contact.organisation_id == organisation)
    return list(session.scalars(query).all())


def get_contact(session: Session, actor: Actor, email: str) -> Contact:
    """One external contact, by email whatever its case; for admins."""
    require_admin(actor, "read contacts")
    email = email.strip().lower()
    contact = session.scalar(select(Contact).where(Contact.email == email))
    if contact is None:
        raise ContactNotFound(email)
    return contact


@dataclass(frozen=True)
class ContactChoice:
    email: str
    name: str
    organisation: str
    organisation_name: str
    kind: str


def contact_choices(session: Session, organisation: str | None = None) -> list[ContactChoice]:
    """The active contacts a form may offer an IRO (raising a dispute, naming or handing on a stage), with
    their organisation; of one organisation when given. Names of contacts are shown on pages only, never
    in an email or a log."""
    query = (
        select(Contact.email, Contact.name, Organisation.id, Organisation.name, Organisation.kind)
        .join(Organisation, Organisation.id == Contact.organisation_id)
        .where(Contact.active.is_(True))
        .order_by(Organisation.name, Contact.name, Contact.email)
    )
    if organisation is not None:
        query = query.where(Organisation.id == organisation)
    return [ContactChoice(*row) for row in session.execute(query).all()]


def add_contact(
    session: Session, actor: Actor, data: ContactData, now: datetime, *, audit_key: str
) -> Contact:
    require_admin(actor, "add contacts")
    problems: list[tuple[str, str]] = []
    _check_name(problems, "name", data.name)
    email, problem = email_address(data.email)
    if problem is not None:
        problems.append(("email", problem))
    _lock(session)
    if not _organisation_exists(session, data.organisation):
        problems.append(("organisation", _unknown_organisation(data.organisation)))
    if problems:
        raise InvalidInput(problems)
    if session.scalar(select(Contact.id).where(Contact.email == email)) is not None:
        raise PartnerConflict(f"{email} is already an external contact; PATCH it to change it")
    if session.scalar(select(Person.id).where(Person.email == email)) is not None:
        raise AddressIsStaff(email)
    contact = Contact(
        email=email,
        name=data.name.strip(),
        organisation_id=data.organisation,
        active=data.active,
        created_at=now,
        updated_at=now,
    )
    session.add(contact)
    _record(
        session,
        audit_key,
        actor.email,
        actor.channel,
        [(CONTACT, contact.email, partner_changes.ADDED, None, contact_fields(contact))],
        now,
    )
    return contact


def contact_history(session: Session, actor: Actor, email: str) -> list[PartnerChange]:
    """Every change to one external contact, by email whatever its case, oldest first; for admins."""
    require_admin(actor, "read the history of contacts")
    email = email.strip().lower()
    if session.scalar(select(Contact.id).where(Contact.email == email)) is None:
        raise ContactNotFound(email)
    return partner_changes.history(session, CONTACT, email)


def update_contact(
    session: Session,
    actor: Actor,
    email: str,
    now: datetime,
    *,
    name: str | None,
    organisation: str | None,
    active: bool | None,
    audit_key: str,
) -> Contact:
    require_admin(actor, "change contacts")
    email = email.strip().lower()
    problems: list[tuple[str, str]] = []
    if name is not None:
        _check_name(problems, "name", name)
    _lock(session)
    if organisation is not None and not _organisation_exists(session, organisation):
        problems.append(("organisation", _unknown_organisation(organisation)))
    if problems:
        raise InvalidInput(problems)
    contact = session.scalar(select(Contact).where(Contact.email == email).with_for_update())
    if contact is None:
        raise ContactNotFound(email)
    leaving = active is False or (organisation is not None and organisation != contact.organisation_id)
    if leaving:
        # As for staff: a stage is never left with someone who can no longer act on it. The IRO hands the
        # stage to another contact first (reassign), or names another for it (name_contact).
        held = _open_disputes_held_by(session, email)
        if held:
            raise PartnerConflict(
                f"{email} owns the current stage of, or is named for a later stage of, open disputes "
                f"{', '.join(held)}: the IRO must hand those on (reassign) or name another contact "
                "(name_contact) first"
            )
    name = name.strip() if name is not None else None
    changes = _contact_changes(contact, name, organisation, active)
    if name is not None:
        contact.name = name
    if organisation is not None:
        contact.organisation_id = organisation
    if active is not None:
        contact.active = active
    contact.updated_at = now
    _record(session, audit_key, actor.email, actor.channel, changes, now)
    return contact


# --- the CSV imports ---------------------------------------------------------------------------------------


def import_organisations(session: Session, path: Path, now: datetime, *, audit_key: str) -> tuple[int, int]:
    """Load a CSV with columns id, name, kind: each id is added, or its name and kind updated. All or
    nothing: every bad row is named by its line; its changes are recorded as the command line's.

    Returns (added, updated).
    """
    _lock(session)
    rows: list[OrganisationData] = []
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line, raw in _read_csv(path, ORGANISATION_COLUMNS, errors):
        where = f"line {line}"
        row = OrganisationData(
            id=(raw.get("id") or "").strip(),
            name=(raw.get("name") or "").strip(),
            kind=(raw.get("kind") or "").strip(),
        )
        before = len(errors)
        _check_id(errors, where, row.id)
        if len(errors) == before and row.id in seen:
            errors.append((where, f"the organisation {row.id} appears twice"))
        seen.add(row.id)
        _check_name(errors, where, row.name)
        _check_kind(errors, where, row.kind)
        rows.append(row)
    if errors:
        raise InvalidInput(errors)
    existing = {o.id: o for o in session.scalars(select(Organisation)).all()}
    added = updated = 0
    changes: list[Change] = []
    for row in rows:
        organisation = existing.get(row.id)
        if organisation is None:
            organisation = Organisation(
                id=row.id, name=row.name, kind=row.kind, created_at=now, updated_at=now
            )
            session.add(organisation)
            changes.append(
                (ORGANISATION, row.id, partner_changes.ADDED, None, organisation_fields(organisation))
            )
            added += 1
        else:
            changes += _organisation_changes(organisation, row.name, row.kind)
            organisation.name, organisation.kind, organisation.updated_at = row.name, row.kind, now
            updated += 1
    _record(session, audit_key, trails.CLI_ACTOR, trails.IMPORT_CHANNEL, changes, now)
    return added, updated


def import_contacts(session: Session, path: Path, now: datetime, *, audit_key: str) -> tuple[int, int]:
    """Load a CSV with columns name, email, organisation: each address is added (active), or its name and
    organisation updated (whether it is active is the API's to change). All or nothing: every bad row is
    named by its line; its changes are recorded as the command line's.

    Returns (added, updated).
    """
    # Locked before the rows are checked against the staff directory, so no person can be added at a row's
    # address between the check and the commit.
    _lock(session)
    organisations = set(session.scalars(select(Organisation.id)).all())
    staff = set(session.scalars(select(Person.email)).all())
    rows: list[ContactData] = []
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    existing = {c.email: c for c in session.scalars(select(Contact)).all()}
    for line, raw in _read_csv(path, CONTACT_COLUMNS, errors):
        where = f"line {line}"
        name = (raw.get("name") or "").strip()
        organisation = (raw.get("organisation") or "").strip()
        _check_name(errors, where, name)
        email, problem = email_address(raw.get("email") or "")
        if problem is not None:
            errors.append((where, problem))
        elif email in seen:
            errors.append((where, f"{email} appears twice"))
        elif email in staff:
            errors.append((where, _is_staff(email)))
        seen.add(email)
        if organisation not in organisations:
            errors.append((where, _unknown_organisation(organisation)))
        known = existing.get(email)
        if known is not None and known.organisation_id != organisation:
            # Moving a contact to another organisation is refused while they hold a stage, as over the API.
            held = _open_disputes_held_by(session, email)
            if held:
                errors.append((where, f"{email} holds stages of open disputes {', '.join(held)}"))
        rows.append(ContactData(name=name, email=email, organisation=organisation))
    if errors:
        raise InvalidInput(errors)
    added = updated = 0
    changes: list[Change] = []
    for row in rows:
        contact = existing.get(row.email)
        if contact is None:
            contact = Contact(
                email=row.email,
                name=row.name,
                organisation_id=row.organisation,
                active=True,
                created_at=now,
                updated_at=now,
            )
            session.add(contact)
            changes.append((CONTACT, row.email, partner_changes.ADDED, None, contact_fields(contact)))
            added += 1
        else:
            changes += _contact_changes(contact, row.name, row.organisation, None)
            contact.name, contact.organisation_id, contact.updated_at = row.name, row.organisation, now
            updated += 1
    _record(session, audit_key, trails.CLI_ACTOR, trails.IMPORT_CHANNEL, changes, now)
    return added, updated


def _open_disputes_held_by(session: Session, email: str) -> list[str]:
    """The references of open disputes whose current stage this contact owns, or that name them for a
    later stage."""
    rows = session.execute(
        select(Dispute.reference, Dispute.owner_email, Dispute.contacts)
        .where(Dispute.state.in_(sorted(OPEN_STATES)), Dispute.ladder != OWN_LADDER_ID)
        .order_by(Dispute.reference)
    ).all()
    return [r.reference for r in rows if r.owner_email == email or email in (r.contacts or {}).values()]


def _read_csv(
    path: Path, columns: tuple[str, ...], errors: list[tuple[str, str]]
) -> list[tuple[int, dict[str, str | None]]]:
    """Each record with the line it starts on, as an editor shows it; a record with more cells than columns
    is named in `errors` and left out. The header must be exactly `columns` (in any order): a column the
    import would ignore is more likely a mistake than a note."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        if sorted(header) != sorted(columns):
            raise InvalidInput(
                [("header", f"the columns must be exactly {','.join(columns)}; found {','.join(header)}")]
            )
        reader.fieldnames = header
        records: list[tuple[int, dict[str, str | None]]] = []
        for raw in reader:
            # DictReader keeps a row's extra cells under the key None.
            cells = {k: v for k, v in raw.items() if k is not None}
            # A quoted cell may hold line breaks, so the record started that many lines before this one.
            line = reader.line_num - sum(v.count("\n") for v in cells.values() if isinstance(v, str))
            if None in raw:
                errors.append((f"line {line}", f"has more cells than the {len(columns)} columns"))
                continue
            records.append((line, cells))
    return records


# --- checks, each adding (where, why) ----------------------------------------------------------------------


def _check_id(problems: list[tuple[str, str]], where: str, value: str) -> None:
    if len(value) > MAX_ORGANISATION_ID or re.fullmatch(ORGANISATION_ID_PATTERN, value) is None:
        problems.append(
            (
                where,
                f"id {value!r} must be a lower-case letter followed by lower-case letters, digits and _ "
                f"(at most {MAX_ORGANISATION_ID})",
            )
        )


def _check_name(problems: list[tuple[str, str]], where: str, value: str) -> None:
    if not value.strip():
        problems.append((where, "name is empty"))
    elif len(value.strip()) > MAX_NAME:
        problems.append((where, f"name must be at most {MAX_NAME} characters"))


def _check_kind(problems: list[tuple[str, str]], where: str, value: str) -> None:
    if value not in ORGANISATION_KINDS:
        problems.append((where, f"kind {value!r} must be one of: {', '.join(ORGANISATION_KINDS)}"))


def _organisation_exists(session: Session, organisation: str) -> bool:
    return session.scalar(select(Organisation.id).where(Organisation.id == organisation)) is not None


def _unknown_organisation(organisation: str) -> str:
    return f"there is no organisation {organisation!r}; add it first (organisations import, or the API)"


def _is_staff(email: str) -> str:
    return str(AddressIsStaff(email))
