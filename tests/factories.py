"""The one place tests make things: the staff and their actors, a raised dispute (through the use case or
over HTTP, with the same default fields), and a timer fired as the sweep fires it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dispute_service import sweep, transactions
from dispute_service.access import Actor
from dispute_service.inputs import RaiseInput
from dispute_service.models import Dispute
from dispute_service.queries import DisputeSnapshot
from states.policy import Policy
from states.vocabulary import Trigger

# The JWT and link secret of every test app, and of the servers the slow tests start.
TEST_SECRET = "test-secret-0123456789abcdef0123456789"
# The metrics token of the test apps that read /metrics, and the header a scraper sends with it.
METRICS_TOKEN = "metrics-token-0123456789abcdef0123"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}

# The staff directory every test that needs people loads (the `staff` fixture): (name, email, roles).
# The last is inactive.
STAFF: list[tuple[str, str, list[str]]] = [
    ("Ima Reviewer", "iro@example.gov.uk", ["iro"]),
    ("Ivan Second", "iro2@example.gov.uk", ["iro"]),
    ("Tara Manager", "tm@example.gov.uk", ["team_manager"]),
    ("Tom Other", "tm2@example.gov.uk", ["team_manager"]),
    ("Colin Parenting", "hocp@example.gov.uk", ["head_of_corporate_parenting"]),
    ("Hana Service", "hos@example.gov.uk", ["head_of_service"]),
    ("Ada Director", "ad@example.gov.uk", ["assistant_director"]),
    ("Mira Manager", "iro.manager@example.gov.uk", ["iro_manager"]),
    ("Adam Admin", "admin@example.gov.uk", ["admin"]),
    ("Gone Person", "gone@example.gov.uk", ["iro"]),
]

# One actor per row of STAFF, in the same order.
IRO, IRO2, TM, TM2, HOCP, HOS, AD, IRO_MANAGER, ADMIN, GONE = (
    Actor(email, frozenset(roles)) for _, email, roles in STAFF
)
IRO_EMAIL = IRO.email
IRO2_EMAIL = IRO2.email
TM_EMAIL = TM.email
TM2_EMAIL = TM2.email
HOCP_EMAIL = HOCP.email
HOS_EMAIL = HOS.email
AD_EMAIL = AD.email
IRO_MANAGER_EMAIL = IRO_MANAGER.email
ADMIN_EMAIL = ADMIN.email
GONE_EMAIL = GONE.email

# What a dispute is raised with unless a test says otherwise. The summary holds "SECRET" and a child's
# name, "Jamie", which the privacy checks look for in every email and log.
RAISE_FIELDS: dict[str, Any] = {
    "child_ref": "LCS-000123",
    "case_type": "looked_after",
    "categories": ["permanency_delay"],
    "summary": "SECRET-SUMMARY permanence plan has drifted for Jamie",
    "team_manager_email": TM_EMAIL,
}


def raise_body(**overrides: Any) -> dict[str, Any]:
    """The JSON body of POST /api/v1/disputes: the default fields with the test's own."""
    return {**RAISE_FIELDS, **overrides}


def raise_dispute(
    sessions: sessionmaker[Session], policy: Policy, now: datetime, *, actor: Actor = IRO, **overrides: Any
) -> DisputeSnapshot:
    """Raise a dispute through the use case, in its own transaction, at `now`."""
    return transactions.raise_dispute(sessions, policy, actor, RaiseInput(**raise_body(**overrides)), now)


def post_dispute(
    post: Callable[..., Any], headers: dict[str, str], *, base_url: str = "", **overrides: Any
) -> dict[str, Any]:
    """Raise a dispute over HTTP: `post` is a TestClient's or httpx's, `headers` carry the caller's token."""
    response = post(f"{base_url}/api/v1/disputes", json=raise_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def fire_timer(
    sessions: sessionmaker[Session], policy: Policy, dispute_id: uuid.UUID, entry_seq: int, now: datetime
) -> Trigger | None:
    """One timer firing, in its own transaction, exactly as the sweep runs it."""
    with sessions.begin() as session:
        return sweep.fire_timer(session, policy, dispute_id, entry_seq, now)


def fetch(sessions: sessionmaker[Session], dispute_id: uuid.UUID) -> Dispute:
    with sessions.begin() as session:
        dispute = session.get(Dispute, dispute_id)
        assert dispute is not None
        return dispute


# The default policy's ladder, bottom to top.
STAGES = (
    "quality_assurance",
    "team_manager",
    "head_of_corporate_parenting",
    "head_of_service",
    "assistant_director",
    "cafcass",
)


@dataclass
class FakeClock:
    """Injected time: tests move it by hand, so nothing sleeps and nothing depends on luck."""

    now: datetime = field(default_factory=lambda: datetime(2018, 1, 8, 10, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now
