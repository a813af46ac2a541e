"""The disputes table the dashboards share, and its paging."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from api.web.views import due_words, owner_words, stage_title, state_words, timeliness
from dispute_service.queries import DisputePage
from states.policy import Policy

PAGE_SIZE = 25


def dispute_rows(page: DisputePage, policy: Policy, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for snapshot in page.items:
        d = snapshot.dispute
        tag = timeliness(d, policy, now)
        rows.append(
            {
                "id": str(d.id),
                "reference": d.reference,
                "child_ref": d.child_ref,
                "stage": stage_title(policy, d.stage),
                "state": state_words(d.state),
                "owner": owner_words(d, policy),
                "due": due_words(d, policy),
                "tag": tag,
            }
        )
    return rows


def pages_of(request: Request, page: DisputePage, current: int) -> dict[str, Any] | None:
    """GOV.UK pagination for a list: previous and next links keeping the other query parameters."""
    last = max(1, -(-page.total // PAGE_SIZE))
    if last == 1:
        return None

    def href(n: int) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
        return "?" + urlencode([*params, ("page", str(n))])

    result: dict[str, Any] = {"items": []}
    if current > 1:
        result["previous"] = {"href": href(current - 1)}
    if current < last:
        result["next"] = {"href": href(current + 1)}
    for n in range(1, last + 1):
        # The first, the last, and those around this one; an ellipsis for the rest.
        if n in (1, last) or abs(n - current) <= 1:
            result["items"].append({"number": str(n), "href": href(n), "current": n == current})
        elif result["items"] and not result["items"][-1].get("ellipsis"):
            result["items"].append({"ellipsis": True})
    return result
