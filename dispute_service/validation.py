"""One collector for invalid input: every check adds (field, message), so one 422 names every problem."""

from __future__ import annotations

import re

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service.errors import InvalidInput
from dispute_service.models import Contact, Organisation, Person
from states.vocabulary import CASE_TYPES, CATEGORIES, MAX_TEXT, REF_PATTERN


def present(text: str | None) -> bool:
    return text is not None and text.strip() != ""


def optional_reason(reason: str | None) -> dict[str, str]:
    """The texts an audit entry keeps when a reason may be given but need not be."""
    return {"reason": reason} if reason is not None and present(reason) else {}


# The API's schema says the same (states.vocabulary.REF_PATTERN); the use case checks it too, so the pages,
# the imports and the command line hold references to the one rule.
REF_RULE = "must be at most 64 letters, digits and . _ / - (starting with a letter or digit)"
MAX_SIBLINGS = 20


def is_reference(text: str) -> bool:
    return len(text) <= 64 and re.fullmatch(REF_PATTERN, text) is not None


class Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.items.append((field, message))

    def text(self, field: str, value: str | None) -> None:
        """A free text that, when given, says something and fits."""
        if not present(value):
            self.add(field, "must not be empty")
        elif value is not None and len(value) > MAX_TEXT:
            self.add(field, f"must be at most {MAX_TEXT} characters")

    def text_if_given(self, field: str, value: str | None) -> None:
        if value is not None:
            self.text(field, value)

    def required(self, field: str, value: str | None) -> str:
        """A free text that must be given. Returns it, or "" once the problem is noted."""
        if value is None:
            self.add(field, "is required")
            return ""
        self.text(field, value)
        return value

    def refs_and_categories(
        self, child_ref: str, sibling_refs: list[str], categories: list[str], case_type: str
    ) -> None:
        if not child_ref.strip():
            self.add("child_ref", "must not be empty: the case management system's ID for the child")
        elif not is_reference(child_ref.strip()):
            self.add("child_ref", REF_RULE)
        if any(not s.strip() for s in sibling_refs):
            self.add("sibling_refs", "must not contain empty references")
        elif not all(is_reference(s.strip()) for s in sibling_refs):
            self.add("sibling_refs", "each " + REF_RULE)
        if len(sibling_refs) > MAX_SIBLINGS:
            self.add("sibling_refs", f"must name at most {MAX_SIBLINGS} children")
        if case_type not in CASE_TYPES:
            self.add("case_type", f"must be one of: {', '.join(CASE_TYPES)}")
        if not categories:
            self.add("categories", f"name at least one of: {', '.join(CATEGORIES)}")
        unknown = [c for c in categories if c not in CATEGORIES]
        if unknown:
            self.add("categories", f"unknown {', '.join(unknown)}; allowed: {', '.join(CATEGORIES)}")

    def person(self, session: Session, field: str, email: str | None, role: str | None) -> str | None:
        """An active person in the directory (holding `role`, when one is named); their email, or None."""
        if email is None or not email.strip():
            self.add(field, "is required")
            return None
        # FOR SHARE: a concurrent deactivation (which takes FOR UPDATE on the person) waits for this
        # hand-over to commit and then sees it, or this waits and sees the person inactive. Otherwise both
        # could commit and leave an open stage owned by someone who can no longer act.
        person = session.scalar(
            select(Person).where(Person.email == email.strip().lower()).with_for_update(read=True)
        )
        if person is None or not person.active:
            self.add(field, f"{email} is not an active person in the staff directory")
            return None
        if role is not None and role not in person.roles:
            self.add(field, f"{email} does not hold the {role} role")
            return None
        return person.email

    def contact(
        self,
        session: Session,
        field: str,
        email: str | None,
        *,
        kind: str | None = None,
        organisation: str | None = None,
    ) -> Contact | None:
        """An active external contact of an organisation of `kind`, or of `organisation` itself (SPEC 10)."""
        if email is None or not email.strip():
            self.add(field, "is required")
            return None
        # FOR SHARE, as for a person: a concurrent deactivation waits for this to commit, or this sees it.
        found = session.execute(
            select(Contact, Organisation.kind)
            .join(Organisation, Organisation.id == Contact.organisation_id)
            .where(Contact.email == email.strip().lower())
            .with_for_update(read=True, of=Contact)
        ).first()
        if found is None or not found[0].active:
            self.add(field, f"{email} is not an active external contact")
            return None
        contact, organisation_kind = found
        if kind is not None and organisation_kind != kind:
            self.add(field, f"{email} is not a contact of an organisation of kind {kind}")
            return None
        if organisation is not None and contact.organisation_id != organisation:
            self.add(field, f"{email} is not a contact of the dispute's organisation, {organisation}")
            return None
        return contact

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidInput(self.items)


# The API's own type, so an imported address is checked and normalised exactly as one added over the API:
# one address, no line breaks (an address ends up in an email's To header).
_EMAIL = TypeAdapter(EmailStr)


def email_address(text: str) -> tuple[str, str | None]:
    """(the address as the directories keep it, None), or (text, why it is not one address)."""
    try:
        return _EMAIL.validate_python(text.strip()).lower(), None
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("value is not a valid email address: ")
        return text, f"email {text!r} is not one valid email address: {reason}"
