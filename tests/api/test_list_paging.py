"""GET /api/v1/disputes pages by a cursor (`after`, from the previous page's `next`) as well as by offset.

Disputes are raised on an injected clock, several at the same moment, so the order's tie-break (the id)
is exercised; every expectation is the set of ids the test raised, never what the list query computes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import ADMIN_EMAIL, IRO2_EMAIL, IRO_EMAIL, TM2_EMAIL, FakeClock, post_dispute

Tokens = Callable[[str], dict[str, str]]
URL = "/api/v1/disputes"


def _raise(client: TestClient, token_for: Tokens, clock: FakeClock, count: int, **fields: Any) -> list[str]:
    """`count` disputes, two at each moment, so ties on raised_at are everywhere."""
    ids = []
    for i in range(count):
        if i and i % 2 == 0:
            clock.advance(hours=1)
        ids.append(post_dispute(client.post, token_for(IRO_EMAIL), **fields)["id"])
    return ids


def _pages(
    client: TestClient, token_for: Tokens, who: str, limit: int, between: Callable[[int], None] | None = None
) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        body = client.get(URL, params=params, headers=token_for(who)).json()
        pages.append(body["items"])
        if body["next"] is None:
            return pages
        if between is not None:
            between(len(pages))
        params = {"limit": limit, "after": body["next"]}


def _order_key(item: dict[str, Any]) -> tuple[str, str]:
    return item["raised_at"], item["id"]


def test_cursor_pages_give_every_row_once_newest_first(
    client: TestClient, token_for: Tokens, clock: FakeClock
) -> None:
    raised = _raise(client, token_for, clock, 11)
    pages = _pages(client, token_for, ADMIN_EMAIL, limit=3)
    assert [len(p) for p in pages] == [3, 3, 3, 2]
    seen = [item for page in pages for item in page]
    assert sorted(i["id"] for i in seen) == sorted(raised)
    # Newest first, ties by id, one order across every page boundary.
    assert seen == sorted(seen, key=_order_key, reverse=True)


def test_rows_raised_between_pages_neither_shift_nor_repeat_the_rows_still_to_come(
    client: TestClient, token_for: Tokens, clock: FakeClock
) -> None:
    before = _raise(client, token_for, clock, 9)
    added: list[str] = []

    def raise_more(_: int) -> None:
        # Newer than everything listed, and one at the very moment of the newest: both sort before the
        # cursor, so the pages still to come are unchanged.
        added.extend(_raise(client, token_for, clock, 1))
        clock.advance(minutes=5)
        added.extend(_raise(client, token_for, clock, 1))

    pages = _pages(client, token_for, ADMIN_EMAIL, limit=2, between=raise_more)
    seen = [item["id"] for page in pages for item in page]
    assert len(seen) == len(set(seen)) == 9
    assert set(seen) == set(before)
    assert added and not set(added) & set(seen)
    # Offset paging over the same rows would have shown a row twice once rows were added in front of it:
    # the list now starts with what was added.
    first = client.get(URL, params={"limit": 2}, headers=token_for(ADMIN_EMAIL)).json()
    assert {i["id"] for i in first["items"]} <= set(added)


def test_rows_raised_between_pages_at_the_cursor_rows_own_moment_go_by_their_id(
    client: TestClient, token_for: Tokens, clock: FakeClock
) -> None:
    """The clock is injected, so a dispute raised between two pages can share the cursor row's
    `raised_at`; its id decides which side of the cursor it falls, and nothing listed before moves."""
    before = _raise(client, token_for, clock, 7)
    first = client.get(URL, params={"limit": 3}, headers=token_for(ADMIN_EMAIL)).json()
    cursor_row = first["items"][-1]
    cursor_id = uuid.UUID(cursor_row["id"])
    clock.now = datetime.fromisoformat(cursor_row["raised_at"])
    # Which side of the cursor row's id each falls is chance (the ids are random); whichever it is, the
    # expectation below says what must be listed. test_queries.py puts cursors on both sides on purpose.
    added = [uuid.UUID(post_dispute(client.post, token_for(IRO_EMAIL))["id"]) for _ in range(8)]
    seen = list(first["items"])
    params = {"limit": 3, "after": first["next"]}
    while params["after"] is not None:
        body = client.get(URL, params=params, headers=token_for(ADMIN_EMAIL)).json()
        seen.extend(body["items"])
        params["after"] = body["next"]
    # Every dispute raised before the first page exactly once; of those raised since at the cursor row's
    # moment, exactly the ones whose id puts them after it; and all of it in one order.
    behind = [str(i) for i in added if i < cursor_id]
    assert sorted(i["id"] for i in seen) == sorted(before + behind)
    keys = [(i["raised_at"], uuid.UUID(i["id"])) for i in seen]
    assert keys == sorted(keys, reverse=True)


def test_offset_pages_show_a_reader_with_some_rights_only_theirs_once_each(
    client: TestClient, token_for: Tokens, clock: FakeClock
) -> None:
    mine, theirs = [], []
    for i in range(9):
        clock.advance(minutes=10)
        if i % 3 == 1:
            theirs.append(
                post_dispute(client.post, token_for(IRO2_EMAIL), team_manager_email=TM2_EMAIL)["id"]
            )
        else:
            mine.append(post_dispute(client.post, token_for(IRO_EMAIL))["id"])
    by_offset = []
    for offset in range(0, 8, 2):
        body = client.get(URL, params={"limit": 2, "offset": offset}, headers=token_for(IRO_EMAIL)).json()
        assert body["total"] == len(mine)
        by_offset.extend(i["id"] for i in body["items"])
    by_cursor = [i["id"] for page in _pages(client, token_for, IRO_EMAIL, limit=2) for i in page]
    assert by_offset == by_cursor == list(reversed(mine))


def test_a_cursor_keeps_the_filters_and_the_readers_rights(
    client: TestClient, token_for: Tokens, clock: FakeClock
) -> None:
    # Another IRO's dispute, older than all of the first IRO's.
    theirs = post_dispute(client.post, token_for(IRO2_EMAIL), team_manager_email=TM2_EMAIL)["id"]
    clock.advance(hours=1)
    care_leavers = _raise(client, token_for, clock, 5, case_type="care_leaver")
    _raise(client, token_for, clock, 4)
    first = client.get(
        URL, params={"limit": 2, "case_type": "care_leaver"}, headers=token_for(ADMIN_EMAIL)
    ).json()
    assert first["total"] == 5 and len(first["items"]) == 2
    rest = client.get(
        URL,
        params={"limit": 10, "case_type": "care_leaver", "after": first["next"]},
        headers=token_for(ADMIN_EMAIL),
    ).json()
    assert sorted(i["id"] for i in first["items"] + rest["items"]) == sorted(care_leavers)
    assert rest["next"] is None
    # The IRO's cursor used by another IRO shows only what that IRO may read.
    mine = client.get(URL, params={"limit": 1}, headers=token_for(IRO_EMAIL)).json()
    other = client.get(URL, params={"after": mine["next"]}, headers=token_for(IRO2_EMAIL)).json()
    assert [(i["id"], i["iro"]) for i in other["items"]] == [(theirs, IRO2_EMAIL)]


def test_offset_pages_and_the_last_page_has_no_next(
    client: TestClient, token_for: Tokens, clock: FakeClock
) -> None:
    raised = _raise(client, token_for, clock, 5)
    first = client.get(URL, params={"limit": 3}, headers=token_for(ADMIN_EMAIL)).json()
    second = client.get(URL, params={"limit": 3, "offset": 3}, headers=token_for(ADMIN_EMAIL)).json()
    assert first["next"] is not None and second["next"] is None
    assert sorted(i["id"] for i in first["items"] + second["items"]) == sorted(raised)
    # The cursor of an offset page leads to the same rows as the next offset.
    after = client.get(
        URL, params={"limit": 3, "after": first["next"]}, headers=token_for(ADMIN_EMAIL)
    ).json()
    assert after["items"] == second["items"]


@pytest.mark.parametrize(
    "params",
    [
        {"after": "not-a-cursor"},
        {"after": "MjAxOC0wMS0wOFQxMDowMDowMCswMDowMHxub3QtYS11dWlk"},  # a time, then not a UUID
        {"after": ""},
    ],
)
def test_a_cursor_this_list_did_not_give_out_is_refused(
    client: TestClient, token_for: Tokens, params: dict[str, str]
) -> None:
    response = client.get(URL, params=params, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == ["after"]
    assert "`next` value of an earlier page" in problem["errors"][0]["message"]


def test_a_cursor_with_an_offset_is_refused(client: TestClient, token_for: Tokens, clock: FakeClock) -> None:
    _raise(client, token_for, clock, 3)
    first = client.get(URL, params={"limit": 1}, headers=token_for(ADMIN_EMAIL)).json()
    response = client.get(URL, params={"after": first["next"], "offset": 1}, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "after", "message": "pages by a cursor or by offset, not both: leave offset out"}
    ]
