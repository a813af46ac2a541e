"""Checks on the fields of a trigger; each appends (field, message) so one 422 names every problem."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service.errors import InvalidInput
from dispute_service.models import Person
from states.machine import CASE_TYPES, CATEGORIES, MAX_TEXT


def optional_reason(reason: str | None) -> dict[str, str]:
    return {"reason": reason} if reason is not None and present(reason) else {}


def present(text: str | None) -> bool:
    return text is not None and text.strip() != ""


def check_text(errors: list[tuple[str, str]], name: str, value: str | None) -> None:
    if not present(value):
        errors.append((name, "must not be empty"))
    elif value is not None and len(value) > MAX_TEXT:
        errors.append((name, f"must be at most {MAX_TEXT} characters"))


def require_text(errors: list[tuple[str, str]], name: str, value: str | None) -> None:
    if value is None:
        errors.append((name, "is required"))
    else:
        check_text(errors, name, value)


def check_refs_and_categories(
    errors: list[tuple[str, str]],
    child_ref: str,
    sibling_refs: list[str],
    categories: list[str],
    case_type: str,
) -> None:
    if not child_ref.strip():
        errors.append(("child_ref", "must not be empty: the case management system's ID for the child"))
    if any(not s.strip() for s in sibling_refs):
        errors.append(("sibling_refs", "must not contain empty references"))
    if case_type not in CASE_TYPES:
        errors.append(("case_type", f"must be one of: {', '.join(CASE_TYPES)}"))
    if not categories:
        errors.append(("categories", f"name at least one of: {', '.join(CATEGORIES)}"))
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        errors.append(("categories", f"unknown {', '.join(unknown)}; allowed: {', '.join(CATEGORIES)}"))


def named_person(
    session: Session, errors: list[tuple[str, str]], name: str, email: str | None, role: str | None
) -> str | None:
    if email is None or not email.strip():
        errors.append((name, "is required"))
        return None
    # FOR SHARE: a concurrent deactivation (which takes FOR UPDATE on the person) waits for this
    # hand-over to commit and then sees it, or this waits and sees the person inactive. Otherwise both
    # could commit and leave an open stage owned by someone who can no longer act.
    person = session.scalar(
        select(Person).where(Person.email == email.strip().lower()).with_for_update(read=True)
    )
    if person is None or not person.active:
        errors.append((name, f"{email} is not an active person in the staff directory"))
        return None
    if role is not None and role not in person.roles:
        errors.append((name, f"{email} does not hold the {role} role"))
        return None
    return person.email


def raise_if(errors: list[tuple[str, str]]) -> None:
    if errors:
        raise InvalidInput(errors)
