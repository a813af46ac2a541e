"""Policy versions: each policy text is stored once; a dispute keeps the one it was raised under."""

from __future__ import annotations

from datetime import datetime
from threading import Lock

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispute_service.database import insert_for
from dispute_service.models import PolicyVersion
from states.policy import Policy, parse_policy

_parsed: dict[int, Policy] = {}
_parsed_lock = Lock()


def version_id(session: Session, policy: Policy, now: datetime) -> int:
    """The id of this policy text, storing it the first time it is used."""
    found = session.scalar(select(PolicyVersion.id).where(PolicyVersion.sha256 == policy.sha256))
    if found is not None:
        return found
    insert = insert_for(session)
    # Two replicas may store the same new policy at once; the unique hash makes the second a no-op.
    session.execute(
        insert(PolicyVersion)
        .values(sha256=policy.sha256, text=policy.text, first_used_at=now)
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    stored = session.scalar(select(PolicyVersion.id).where(PolicyVersion.sha256 == policy.sha256))
    assert stored is not None
    return stored


def policy_for(session: Session, policy_id: int, current: Policy) -> Policy:
    """The policy a dispute was raised under, with today's calendar.

    Stages and timescales stay as they were; bank holidays and closure days always come from the current
    policy, because a one-off bank holiday can be announced only days ahead.
    """
    stored = _parsed.get(policy_id)
    if stored is None:
        text = session.scalar(select(PolicyVersion.text).where(PolicyVersion.id == policy_id))
        if text is None:
            raise LookupError(f"policy version {policy_id} is missing")
        with _parsed_lock:
            stored = _parsed.setdefault(policy_id, parse_policy(text))
    if stored.sha256 == current.sha256:
        return current
    return stored.with_calendar(current.calendar)
