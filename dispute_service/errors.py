"""Domain errors, defined once. They carry no HTTP: `api/errors.py` maps them to statuses in one place."""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """Base of every refusal the service layer can give."""


class Unauthenticated(DomainError):
    """No valid token, or its person is unknown or inactive."""


class DisputeNotFound(DomainError):
    """Unknown, or not the caller's to read: the two look the same from outside."""


class UnknownTrigger(DomainError):
    def __init__(self, trigger: str, known: Sequence[str]) -> None:
        super().__init__(f"there is no action called {trigger!r}; actions are: {', '.join(known)}")
        self.known = list(known)


class Forbidden(DomainError):
    def __init__(self, trigger: str, who: str) -> None:
        super().__init__(f"{who} may never use {trigger} on this dispute")
        self.trigger = trigger


class NotAllowedNow(DomainError):
    def __init__(self, trigger: str, stage: str, state: str, allowed_actions: Sequence[str]) -> None:
        allowed = ", ".join(allowed_actions) or "none"
        super().__init__(
            f"{trigger} is not allowed now: the dispute is {state} at {stage}; you may now use: {allowed}"
        )
        self.trigger = trigger
        self.allowed_actions = list(allowed_actions)


class PreconditionRequired(DomainError):
    """An action that moves a dispute along, sent without saying which version of the dispute it was
    aimed at: a retried or doubled request could otherwise skip a rung nobody meant to skip."""

    def __init__(self, trigger: str) -> None:
        super().__init__(
            f"{trigger} needs the version of the dispute it is aimed at: send expected_version in the body "
            'or an If-Match header with the dispute\'s ETag (for example If-Match: "3")'
        )
        self.trigger = trigger


class VersionConflict(DomainError):
    def __init__(self, expected: int, current: int) -> None:
        super().__init__(
            f"the dispute has changed since version {expected}; it is now at version {current}. "
            "Reload it and try again."
        )
        self.current_version = current


class InvalidInput(DomainError):
    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))
        self.errors = list(errors)


class PersonNotFound(DomainError):
    def __init__(self, email: str) -> None:
        super().__init__(f"nobody with the email {email} is in the staff directory")


class PersonConflict(DomainError):
    """Deactivating someone who still owns open work, or adding an email twice."""

    def __init__(self, message: str, references: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.references = list(references)


class OrganisationNotFound(DomainError):
    def __init__(self, organisation_id: str) -> None:
        super().__init__(f"there is no organisation with the id {organisation_id!r}")


class ContactNotFound(DomainError):
    def __init__(self, email: str) -> None:
        super().__init__(f"nobody with the email {email} is an external contact")


class PartnerConflict(DomainError):
    """Adding an organisation or a contact twice, or a contact at an address of the staff directory."""


class AddressIsStaff(PartnerConflict):
    """Adding a contact at a staff address: `AddressIsAContact` the other way round, its own class so a page
    can say so at the address rather than as 'already a contact'."""

    def __init__(self, email: str) -> None:
        super().__init__(
            f"{email} is in the staff directory; a contact's address is never also a staff address"
        )


class AddressIsAContact(PersonConflict):
    """Adding a person at an external contact's address: a contact's address is never also a staff address."""

    def __init__(self, email: str, organisation: str) -> None:
        # A person signs in and holds roles, a contact never does: were one address both, its token would
        # act with the person's roles on the stages the contact owns, and the audit could not tell which of
        # the two acted.
        super().__init__(
            f"{email} is an external contact of the organisation {organisation}; "
            "a contact's address is never also a staff address"
        )


class LinkProblem(DomainError):
    """An emailed action link that cannot be used; the subclass says why."""


class LinkNotFound(LinkProblem):
    def __init__(self) -> None:
        super().__init__("This link is not recognised. It may have been mistyped or altered.")


class LinkUsed(LinkProblem):
    def __init__(self) -> None:
        super().__init__("This link has already been used. Each link works once.")


class LinkStale(LinkProblem):
    def __init__(self, reference: str) -> None:
        super().__init__(
            f"Dispute {reference} has moved on since this email was sent, so this link no longer applies."
        )


class LinkExpired(LinkProblem):
    def __init__(self) -> None:
        super().__init__("This link has expired.")


class LinkNotBound(LinkProblem):
    """The link's person no longer holds the part in the dispute the link was sent to them for: nobody
    else is shown the dispute's texts."""

    def __init__(self) -> None:
        super().__init__("The part in this dispute that the link was sent to you for is no longer yours.")


class LinkCodeExpired(LinkProblem):
    """No code waits for this link: none was sent, it has been used, or its 15 minutes are over."""

    def __init__(self) -> None:
        super().__init__("This code has expired or has already been used. Ask for a new code.")


class LinkCodeWrong(LinkProblem):
    def __init__(self, tries_left: int) -> None:
        super().__init__(
            f"That code is not right. You have {tries_left} more {'try' if tries_left == 1 else 'tries'}, "
            "then the link stops working."
        )
        self.tries_left = tries_left


class LinkLocked(LinkProblem):
    """Too many wrong codes: the link is spent, so nobody can go on guessing with it."""

    def __init__(self) -> None:
        super().__init__(
            "That code is not right, and too many wrong codes have been tried: this link no longer works. "
            "You can still act on the dispute by signing in."
        )


class ReportForbidden(Forbidden):
    """The annual report holds counts only, but it is for managers: `Forbidden`'s wording names a dispute."""

    def __init__(self, who: str, reader_roles: Sequence[str]) -> None:
        DomainError.__init__(
            self, f"{who} may not read the annual report; it is for the roles {', '.join(reader_roles)}"
        )
        self.trigger = "report"
