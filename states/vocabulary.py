"""The words of the dispute service: states, triggers, case types, categories, outcome codes, roles,
organisation kinds, the reference and organisation id patterns and the text limit. The API schemas, the
link pages and the emails take them from here, so a value changed here changes everywhere, and a value
written out elsewhere is caught by tests/test_vocabulary.py.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    AWAITING_RESPONSE = "awaiting_response"
    RESPONDED = "responded"
    ON_HOLD = "on_hold"
    AWAITING_IRO_DECISION = "awaiting_iro_decision"
    REFERRED = "referred"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


OPEN_STATES = frozenset(
    {State.AWAITING_RESPONSE, State.RESPONDED, State.ON_HOLD, State.AWAITING_IRO_DECISION, State.REFERRED}
)
ENDED_STATES = frozenset({State.RESOLVED, State.WITHDRAWN, State.CLOSED})


class Trigger(StrEnum):
    RAISE = "raise"
    ACKNOWLEDGE = "acknowledge"
    RESPOND = "respond"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    ESCALATE = "escalate"
    TIMEOUT = "timeout"
    REFER_TO_CAFCASS = "refer_to_cafcass"
    CLOSE = "close"
    WITHDRAW = "withdraw"
    HOLD = "hold"
    RESUME = "resume"
    EXTEND = "extend"
    REASSIGN = "reassign"
    REASSIGN_IRO = "reassign_iro"
    AMEND = "amend"
    REDACT = "redact"
    # The IRO names (or changes) the contact of a later named stage of a partner ladder (SPEC 10).
    NAME_CONTACT = "name_contact"
    # The scheduler's own: an escalation day that became non-working (a closure day added since) moves on.
    DEFER = "defer"
    # Bookkeeping of the scheduler and of the audit: a reminder sent, and the seal that commits a legacy
    # chain to the keyed one. They add audit entries and change nothing of the dispute.
    REMIND = "remind"
    SEAL = "seal"


# `raise` is POST /disputes; `timeout`, `defer` and `remind` belong to the scheduler and `seal` to the audit.
# None is ever offered to a caller.
SYSTEM_TRIGGERS: tuple[Trigger, ...] = (Trigger.TIMEOUT, Trigger.DEFER, Trigger.REMIND, Trigger.SEAL)
# Entries that record something about a dispute without changing it, so they leave its version alone.
BOOKKEEPING_TRIGGERS: frozenset[Trigger] = frozenset({Trigger.DEFER, Trigger.REMIND, Trigger.SEAL})
# The actions that move a dispute to a place the caller must have seen: over the API they say which
# version they were aimed at, so a doubled or retried request never skips a rung.
AIMED_TRIGGERS: frozenset[Trigger] = frozenset(
    {
        Trigger.ESCALATE,
        Trigger.REOPEN,
        Trigger.REFER_TO_CAFCASS,
        Trigger.CLOSE,
        Trigger.WITHDRAW,
        Trigger.RESOLVE,
    }
)
ACTION_TRIGGERS: tuple[Trigger, ...] = tuple(
    t for t in Trigger if t is not Trigger.RAISE and t not in SYSTEM_TRIGGERS
)

# The actions an email offers each recipient: the owner answers for their stage, and the IRO decides what
# happens next. Every other trigger is used through the API only.
OWNER_LINK_TRIGGERS: tuple[Trigger, ...] = (Trigger.ACKNOWLEDGE, Trigger.RESPOND, Trigger.RESOLVE)
IRO_LINK_TRIGGERS: tuple[Trigger, ...] = (Trigger.RESOLVE, Trigger.ESCALATE, Trigger.REOPEN)
# Every trigger a link can carry, each once, so each needs one label and one page.
LINK_TRIGGERS: tuple[Trigger, ...] = tuple(dict.fromkeys(OWNER_LINK_TRIGGERS + IRO_LINK_TRIGGERS))


class CaseType(StrEnum):
    LOOKED_AFTER = "looked_after"
    CHILD_PROTECTION = "child_protection"
    CARE_LEAVER = "care_leaver"


class Category(StrEnum):
    PERMANENCY_DELAY = "permanency_delay"
    CARE_PLANNING_TIMESCALE = "care_planning_timescale"
    PLACEMENT_CHOICE = "placement_choice"
    INDEPENDENT_VISITOR = "independent_visitor"
    INDEPENDENT_LIVING = "independent_living"
    HUMAN_RIGHTS_BREACH = "human_rights_breach"
    CONTACT = "contact"
    EDUCATION = "education"
    HEALTH = "health"
    OTHER = "other"


class OutcomeCode(StrEnum):
    ACTION_AGREED = "action_agreed"
    PLAN_CHANGED = "plan_changed"
    SERVICE_PROVIDED = "service_provided"
    EXPLANATION_ACCEPTED = "explanation_accepted"
    OTHER = "other"


class Role(StrEnum):
    IRO = "iro"
    TEAM_MANAGER = "team_manager"
    HEAD_OF_CORPORATE_PARENTING = "head_of_corporate_parenting"
    HEAD_OF_SERVICE = "head_of_service"
    ASSISTANT_DIRECTOR = "assistant_director"
    IRO_MANAGER = "iro_manager"
    ADMIN = "admin"


# The owner role of a partner ladder's named stage: its owner is the external contact the IRO named. Not
# one of ROLES on purpose: nobody in the staff directory holds it, so no staff member owns such a stage, and
# only a contact acting through a link is given it (dispute_service.access).
EXTERNAL = "external"


class OrganisationKind(StrEnum):
    """What an organisation outside the council is to it (SPEC 10): a partner agency (health, education,
    housing, a provider) or another local authority. A ladder of the policy names the kind it is for."""

    PARTNER = "partner"
    OTHER_AUTHORITY = "other_authority"


# Plain strings, in the enums' order: reports, CSV columns and error messages are built from these, and
# stay exactly what they were before the enums existed.
CASE_TYPES: tuple[str, ...] = tuple(c.value for c in CaseType)
CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)
OUTCOME_CODES: tuple[str, ...] = tuple(c.value for c in OutcomeCode)
ROLES: tuple[str, ...] = tuple(r.value for r in Role)
ORGANISATION_KINDS: tuple[str, ...] = tuple(k.value for k in OrganisationKind)

# A child reference, or a dispute's reference brought in from a council's records: letters, digits and
# . _ / - only. A reference is written into emails' subjects, bodies and Message-IDs, so a line break or a
# control character in one could forge a header line; the API and the imports refuse the same ones.
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"

# An organisation's id: the shape of a stage id, as it is written into the policy and the CSV imports.
ORGANISATION_ID_PATTERN = r"^[a-z][a-z0-9_]*$"
MAX_ORGANISATION_ID = 64

# The longest free text (summary, reason, response, outcome) anyone may enter, wherever they enter it.
MAX_TEXT = 20_000
