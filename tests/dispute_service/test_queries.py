"""The list's cursor: what it holds, and that the database compares it in the order it sorts, on both engines.

Disputes are raised through the use case at moments the test chooses, several at one moment, so the tie
on `raised_at` is decided by the id. Python's own UUID order is the oracle: the list must agree with it
whether the id is stored as 32 hex digits (SQLite) or as a uuid (PostgreSQL).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dispute_service import transactions
from dispute_service.errors import InvalidInput
from dispute_service.models import Dispute
from dispute_service.queries import DisputeFilters, DisputeSnapshot, page_cursor, parse_cursor
from states.policy import Policy
from tests.factories import ADMIN, FakeClock

NOON = datetime(2018, 1, 8, 12, tzinfo=UTC)
LATER = NOON + timedelta(hours=1)
EARLIER = NOON - timedelta(hours=1)


def test_a_cursor_holds_the_sort_key_and_gives_it_back() -> None:
    last = Dispute(raised_at=datetime(2018, 3, 25, 1, 30, 0, 123456, tzinfo=UTC), id=uuid.uuid4())
    cursor = page_cursor(last)
    assert cursor.replace("-", "").replace("_", "").isalnum()  # URL-safe, without padding
    assert parse_cursor(cursor) == (last.raised_at, last.id)


@pytest.mark.parametrize("cursor", ["", "x", "bm9waXBl", "MjAxOC0wMS0wOFQxMDowMDowMHx6eno"])
def test_anything_else_is_refused_naming_after(cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_cursor(cursor)
    assert [field for field, _ in refused.value.errors] == ["after"]


@pytest.fixture
def raised(raise_one: Callable[..., DisputeSnapshot], clock: FakeClock) -> dict[datetime, list[uuid.UUID]]:
    """One dispute an hour before noon, five at noon exactly, one an hour after."""
    ids: dict[datetime, list[uuid.UUID]] = {}
    for moment, count in ((EARLIER, 1), (NOON, 5), (LATER, 1)):
        clock.now = moment
        ids[moment] = [raise_one().dispute.id for _ in range(count)]
    return ids


def _after(
    sessions: sessionmaker[Session], policy: Policy, clock: FakeClock, key: tuple[datetime, uuid.UUID]
) -> list[uuid.UUID]:
    page = transactions.list_disputes(sessions, policy, ADMIN, DisputeFilters(after=key), clock.now)
    return [s.dispute.id for s in page.items]


def test_ties_on_raised_at_are_broken_by_the_id_as_python_orders_uuids(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: FakeClock,
    raised: dict[datetime, list[uuid.UUID]],
) -> None:
    at_noon = sorted(raised[NOON], reverse=True)
    # After each of noon's disputes come those of noon with a lower id, then the one before noon.
    for i, key in enumerate(at_noon):
        assert _after(sessions, policy, clock, (NOON, key)) == at_noon[i + 1 :] + raised[EARLIER]
    # Ids no dispute has, at both ends of the order, and one between two that exist.
    assert _after(sessions, policy, clock, (NOON, uuid.UUID(int=2**128 - 1))) == at_noon + raised[EARLIER]
    assert _after(sessions, policy, clock, (NOON, uuid.UUID(int=0))) == raised[EARLIER]
    between = uuid.UUID(int=(at_noon[1].int + at_noon[2].int) // 2)
    assert _after(sessions, policy, clock, (NOON, between)) == at_noon[2:] + raised[EARLIER]


def test_a_cursor_time_in_another_offset_names_the_same_moment(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: FakeClock,
    raised: dict[datetime, list[uuid.UUID]],
) -> None:
    key = max(raised[NOON])
    in_utc = _after(sessions, policy, clock, (NOON, key))
    # 13:00 in Paris in January is noon in UTC; 11:00 an hour west of Greenwich is noon too.
    for hours in (1, -1):
        elsewhere = NOON.astimezone(timezone(timedelta(hours=hours)))
        assert _after(sessions, policy, clock, (elsewhere, key)) == in_utc
    assert in_utc == sorted(raised[NOON], reverse=True)[1:] + raised[EARLIER]
