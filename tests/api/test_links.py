"""A link POST is one transaction: the link is checked, the action applied and the link consumed together,
so a refused action leaves the link unused and writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.app import Mode, create_app
from api.auth import development_token
from dispute_service.config import Settings
from dispute_service.models import ActionLink, AuditEntry, Dispute, Person
from notifications import links
from tests.factories import IRO2_EMAIL, IRO_EMAIL, IRO_MANAGER_EMAIL, TM2_EMAIL, TM_EMAIL, post_dispute
from tests.pages import open_link, post_link
from tests.recording import record_transactions


def _issue(
    sessions: sessionmaker[Session], settings: Settings, clock: Any, dispute_id: str, trigger: str
) -> str:
    with sessions.begin() as session:
        dispute = session.get(Dispute, uuid.UUID(dispute_id))
        assert dispute is not None
        return links.issue(
            session,
            settings.link_secret,
            person_email=TM_EMAIL,
            dispute=dispute,
            trigger=trigger,
            expires_at=clock.now + timedelta(days=30),
            now=clock.now,
        )


def _token(settings: Settings, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {development_token(settings, email, datetime.now(UTC))}"}


def _state(sessions: sessionmaker[Session], trigger: str) -> tuple[int, int, Any]:
    with sessions.begin() as session:
        return (
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
            session.scalar(select(func.max(Dispute.version))) or 0,
            session.scalar(select(ActionLink.used_at).where(ActionLink.trigger == trigger)),
        )


def test_a_link_post_that_acts_consumes_the_link_and_writes_the_change_in_one_transaction(
    client: TestClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Any,
    raise_dispute: Callable[..., dict[str, Any]],
) -> None:
    token = _issue(sessions, settings, clock, raise_dispute()["id"], "acknowledge")
    entries, version, used_at = _state(sessions, "acknowledge")
    assert used_at is None
    opened = open_link(client, token)
    with record_transactions(client.app.state.engine) as seen:  # type: ignore[attr-defined]
        response = client.post(f"/links/{token}", data=opened, follow_redirects=False)
    assert response.status_code == 303, response.text
    [statements] = seen
    assert any(s.startswith("UPDATE action_links SET used_at") for s in statements)
    assert any(s.startswith("INSERT INTO audit_entries") for s in statements)
    assert any(s.startswith("UPDATE disputes") for s in statements)
    assert _state(sessions, "acknowledge") == (entries + 1, version + 1, clock.now)


@pytest.mark.parametrize(
    ("trigger", "form", "first", "status"),
    [
        ("respond", {}, None, 422),  # the form again: the response is missing
        ("resolve", {"outcome": "agreed"}, None, 422),  # no outcome code
        ("respond", {"response": "again"}, "respond", 409),  # already responded: not allowed now
    ],
)
def test_a_link_post_that_is_refused_runs_one_transaction_leaves_the_link_unused_and_writes_nothing(
    client: TestClient,
    token_for: Callable[[str], dict[str, str]],
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Any,
    raise_dispute: Callable[..., dict[str, Any]],
    trigger: str,
    form: dict[str, str],
    first: str | None,
    status: int,
) -> None:
    dispute = raise_dispute()
    token = _issue(sessions, settings, clock, dispute["id"], trigger)
    if first is not None:
        done = client.post(
            f"/api/v1/disputes/{dispute['id']}/actions/{first}",
            json={"response": "SECRET-RESPONSE"},
            headers=token_for(TM_EMAIL),
        )
        assert done.status_code == 200, done.text
    before = _state(sessions, trigger)
    assert before[2] is None
    opened = open_link(client, token)
    with record_transactions(client.app.state.engine) as seen:  # type: ignore[attr-defined]
        response = client.post(f"/links/{token}", data={**opened, **form}, follow_redirects=False)
    assert response.status_code == status, response.text
    assert len(seen) == 1 and seen.writing() == []
    assert _state(sessions, trigger) == before


def test_a_link_page_reads_in_one_transaction_and_changes_nothing(
    client: TestClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Any,
    raise_dispute: Callable[..., dict[str, Any]],
) -> None:
    token = _issue(sessions, settings, clock, raise_dispute()["id"], "acknowledge")
    before = _state(sessions, "acknowledge")
    with record_transactions(client.app.state.engine) as seen:  # type: ignore[attr-defined]
        page = client.get(f"/links/{token}")
    assert page.status_code == 200
    assert len(seen) == 1 and seen.writing() == []
    assert _state(sessions, "acknowledge") == before


# --- rate limits -----------------------------------------------------------------------------------------

WINDOW = 60.0


@pytest.fixture
def limited(settings: Settings, clock: Any, staff: list[str]) -> Iterator[TestClient]:
    """The app with small link limits: 3 uses per address and 5 per client in each minute."""
    small = settings.model_copy(
        update={"rate_limit_window_seconds": WINDOW, "link_uses_per_address": 3, "link_uses_per_client": 5}
    )
    with TestClient(create_app(small, mode=Mode.STRICT, clock=clock)) as client:
        yield client


def _from(client: TestClient, address: str) -> TestClient:
    # The same started app, seen from another client address.
    return TestClient(client.app, client=(address, 50000))


def _throttled(response: Any, wait: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(wait)
    assert response.headers["content-type"].startswith("text/html") and "<h1 " in response.text


def test_uses_of_one_persons_links_are_limited_whichever_client_sends_them(
    limited: TestClient, sessions: sessionmaker[Session], settings: Settings, clock: Any
) -> None:
    d = post_dispute(limited.post, _token(settings, IRO_EMAIL))
    token = _issue(sessions, settings, clock, d["id"], "respond")
    # Each post without a response shows the form again: a use, and the link stays unused.
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert post_link(_from(limited, address), token).status_code == 422
        clock.advance(seconds=10)
    # The fourth use for the person within the minute, from a fourth client: the first leaves in 30 s.
    _throttled(post_link(_from(limited, "10.0.0.4"), token, data={"response": "r"}), 30)
    clock.advance(seconds=30)
    done = post_link(_from(limited, "10.0.0.4"), token, data={"response": "r"}, follow_redirects=False)
    assert done.status_code == 303


def test_guessing_tokens_is_limited_per_client_and_a_good_link_still_opens_for_others(
    limited: TestClient, sessions: sessionmaker[Session], settings: Settings, clock: Any
) -> None:
    d = post_dispute(limited.post, _token(settings, IRO_EMAIL))
    token = _issue(sessions, settings, clock, d["id"], "acknowledge")
    for i in range(5):
        assert limited.get(f"/links/guess-{i}").status_code == 404
        clock.advance(seconds=1)
    # Over the limit, the client is refused whatever it opens, and its form posts are refused too.
    _throttled(limited.get(f"/links/{token}"), 55)
    _throttled(post_link(limited, token), 55)
    assert _from(limited, "10.0.0.9").get(f"/links/{token}").status_code == 200
    clock.advance(seconds=WINDOW)
    assert limited.get(f"/links/{token}").status_code == 200


def test_opening_a_good_link_is_not_counted(
    limited: TestClient, sessions: sessionmaker[Session], settings: Settings, clock: Any
) -> None:
    # Mail scanners open every link in an email, perhaps many times.
    d = post_dispute(limited.post, _token(settings, IRO_EMAIL))
    token = _issue(sessions, settings, clock, d["id"], "acknowledge")
    assert {limited.get(f"/links/{token}").status_code for _ in range(20)} == {200}
    assert post_link(limited, token, follow_redirects=False).status_code == 303


# --- what the pages show -----------------------------------------------------------------------------------


def test_the_result_page_shows_only_the_services_words(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings, clock: Any
) -> None:
    d = post_dispute(client.post, _token(settings, IRO_EMAIL))
    token = _issue(sessions, settings, clock, d["id"], "acknowledge")
    done = post_link(client, token, follow_redirects=False)
    assert done.headers["location"] == "/links/done?action=acknowledge"
    page = client.get(done.headers["location"])
    assert "Your acknowledgement of the dispute is recorded." in page.text
    # Nothing from the query reaches the page: a link can make it say nothing but the service's words.
    crafted = client.get("/links/done", params={"reference": "CALL-0800-SCAM", "action": "pay_us_now"})
    assert crafted.status_code == 200
    assert "CALL-0800-SCAM" not in crafted.text and "pay" not in crafted.text
    assert "Thank you. Your action is recorded." in crafted.text


@pytest.mark.parametrize("change", ["reassigned", "inactive"])
def test_a_link_whose_person_no_longer_owns_the_stage_shows_nothing_of_the_dispute(
    client: TestClient,
    token_for: Callable[[str], dict[str, str]],
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Any,
    change: str,
) -> None:
    d = post_dispute(client.post, token_for(IRO_EMAIL))
    token = _issue(sessions, settings, clock, d["id"], "respond")
    assert d["reference"] in client.get(f"/links/{token}").text
    if change == "reassigned":
        moved = client.post(
            f"/api/v1/disputes/{d['id']}/actions/reassign",
            json={"owner_email": TM2_EMAIL, "reason": "cover"},
            headers=token_for(IRO_MANAGER_EMAIL),
        )
        assert moved.status_code == 200, moved.text
    else:
        with sessions.begin() as session:
            session.execute(update(Person).where(Person.email == TM_EMAIL).values(active=False))
    for page in (client.get(f"/links/{token}"), post_link(client, token, data={"response": "r"})):
        assert page.status_code == 403 and "<h1 " in page.text
        assert d["reference"] not in page.text and d["child_ref"] not in page.text
    assert _state(sessions, "respond")[2] is None, "the link is still unused"


def test_an_iro_link_is_the_iros_only_while_they_are_the_disputes_iro(
    client: TestClient,
    token_for: Callable[[str], dict[str, str]],
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Any,
) -> None:
    d = post_dispute(client.post, token_for(IRO_EMAIL))
    with sessions.begin() as session:
        dispute = session.get(Dispute, uuid.UUID(d["id"]))
        assert dispute is not None
        token = links.issue(
            session,
            settings.link_secret,
            person_email=IRO_EMAIL,
            dispute=dispute,
            trigger="escalate",
            expires_at=clock.now + timedelta(days=30),
            now=clock.now,
        )
    assert client.get(f"/links/{token}").status_code == 200
    moved = client.post(
        f"/api/v1/disputes/{d['id']}/actions/reassign_iro",
        json={"iro_email": IRO2_EMAIL, "reason": "leave"},
        headers=token_for(IRO_MANAGER_EMAIL),
    )
    assert moved.status_code == 200, moved.text
    page = client.get(f"/links/{token}")
    assert page.status_code == 403 and d["reference"] not in page.text


def test_a_link_form_holding_the_nul_character_is_refused_and_the_link_stays_unused(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings, clock: Any
) -> None:
    d = post_dispute(client.post, _token(settings, IRO_EMAIL))
    token = _issue(sessions, settings, clock, d["id"], "respond")
    refused = post_link(client, token, data={"response": "a\x00b"}, follow_redirects=False)
    assert refused.status_code == 422 and "NUL" in refused.text
    assert _state(sessions, "respond")[2] is None
