"""GET /api/v1/disputes: each filter narrows the list to exactly the disputes it names, on both databases.

Three disputes that differ in every field a filter looks at, raised a day apart; an admin reads them all, so
what a filter leaves out is the filter's doing and not the reader's rights. Each expectation is written out
from what the test did, never worked out with the query the list runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    ADMIN_EMAIL,
    IRO2_EMAIL,
    IRO_EMAIL,
    TM2_EMAIL,
    TM_EMAIL,
    FakeClock,
    post_dispute,
)

Tokens = Callable[[str], dict[str, str]]
URL = "/api/v1/disputes"


@pytest.fixture
def three(client: TestClient, token_for: Tokens, clock: FakeClock) -> dict[str, dict[str, Any]]:
    """d1 (Mon 8 Jan 2018): IRO, TM, looked after, responded. d2 (Tue 9th): IRO2, TM2, child protection,
    two categories. d3 (Wed 10th): IRO, raised straight at the team manager stage, care leaver."""
    d1 = post_dispute(client.post, token_for(IRO_EMAIL), child_ref="LCS-1")
    clock.advance(days=1)
    d2 = post_dispute(
        client.post,
        token_for(IRO2_EMAIL),
        child_ref="LCS-2",
        case_type="child_protection",
        categories=["contact", "health"],
        team_manager_email=TM2_EMAIL,
    )
    clock.advance(days=1)
    d3 = post_dispute(
        client.post,
        token_for(IRO_EMAIL),
        child_ref="LCS-3",
        case_type="care_leaver",
        categories=["education"],
        start_stage="team_manager",
        reason="QA already tried",
    )
    responded = client.post(
        f"{URL}/{d1['id']}/actions/respond",
        json={"response": "Plan agreed", "expected_version": d1["version"]},
        headers=token_for(TM_EMAIL),
    )
    assert responded.status_code == 200, responded.text
    return {"d1": d1, "d2": d2, "d3": d3}


def listed(client: TestClient, token_for: Tokens, three: dict[str, dict[str, Any]], **params: Any) -> Any:
    """The names of the listed disputes, in the list's order, and the total."""
    response = client.get(URL, params=params, headers=token_for(ADMIN_EMAIL))
    assert response.status_code == 200, response.text
    body = response.json()
    names = {d["id"]: name for name, d in three.items()}
    return [names[item["id"]] for item in body["items"]], body["total"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["d3", "d2", "d1"]),  # newest first
        ({"state": "responded"}, ["d1"]),
        ({"state": "awaiting_response"}, ["d3", "d2"]),
        ({"state": "resolved"}, []),
        ({"stage": "team_manager"}, ["d3"]),
        ({"stage": "quality_assurance"}, ["d2", "d1"]),
        ({"iro": IRO2_EMAIL}, ["d2"]),
        ({"iro": IRO_EMAIL.upper()}, ["d3", "d1"]),  # emails compare without case
        ({"owner": TM2_EMAIL}, ["d2"]),
        ({"owner": TM_EMAIL}, ["d3", "d1"]),
        ({"child_ref": "LCS-3"}, ["d3"]),
        ({"child_ref": "LCS-"}, []),  # the whole reference, not a prefix
        ({"case_type": "child_protection"}, ["d2"]),
        ({"case_type": "looked_after"}, ["d1"]),
        ({"category": "health"}, ["d2"]),
        ({"category": "contact"}, ["d2"]),
        ({"category": "permanency_delay"}, ["d1"]),
        ({"category": "placement_choice"}, []),
        ({"raised_from": "2018-01-09"}, ["d3", "d2"]),
        ({"raised_to": "2018-01-09"}, ["d2", "d1"]),  # the whole of the last day
        ({"raised_from": "2018-01-09", "raised_to": "2018-01-09"}, ["d2"]),
        ({"raised_from": "2018-01-11"}, []),
        ({"iro": IRO_EMAIL, "owner": TM_EMAIL, "stage": "team_manager"}, ["d3"]),  # filters combine
    ],
    ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_each_filter_lists_exactly_its_disputes(
    client: TestClient,
    token_for: Tokens,
    three: dict[str, dict[str, Any]],
    backend: str,
    params: dict[str, str],
    expected: list[str],
) -> None:
    assert listed(client, token_for, three, **params) == (expected, len(expected))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"limit": 2}, ["d3", "d2"]),
        ({"limit": 1, "offset": 1}, ["d2"]),
        ({"offset": 2}, ["d1"]),
        ({"offset": 3}, []),
        ({"limit": 1, "state": "awaiting_response"}, ["d3"]),
    ],
    ids=["limit", "limit-offset", "offset", "offset-past-the-end", "limit-of-a-filter"],
)
def test_limit_and_offset_page_the_list_and_the_total_counts_every_match(
    client: TestClient,
    token_for: Tokens,
    three: dict[str, dict[str, Any]],
    params: dict[str, Any],
    expected: list[str],
) -> None:
    total = 2 if "state" in params else 3
    assert listed(client, token_for, three, **params) == (expected, total)


def test_overdue_lists_the_disputes_awaiting_a_response_past_their_due_date(
    client: TestClient, token_for: Tokens, three: dict[str, dict[str, Any]], clock: FakeClock
) -> None:
    assert listed(client, token_for, three, overdue="true") == ([], 0)
    # A minute after d2 falls due, before d3 does; d1 was responded to, so it is never overdue.
    due = {name: datetime.fromisoformat(d["due_at"]) for name, d in three.items()}
    clock.now = due["d2"] + timedelta(minutes=1)
    assert due["d1"] < clock.now < due["d3"]
    assert listed(client, token_for, three, overdue="true") == (["d2"], 1)
    assert listed(client, token_for, three, overdue="false") == (["d3", "d1"], 2)
