"""Every refusal (401, 403, 404, 409, 422) gets its status, a problem+json body, and changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.models import AuditEntry, AuditText, Dispute, Notification
from states.vocabulary import AIMED_TRIGGERS
from tests.factories import IRO_EMAIL, TM_EMAIL, raise_body

Tokens = Callable[[str], dict[str, str]]


def database_state(sessions: sessionmaker[Session]) -> tuple[Any, ...]:
    with sessions() as session:
        audit = session.execute(select(func.count(), func.max(AuditEntry.id)).select_from(AuditEntry)).one()
        versions = tuple(
            session.execute(select(Dispute.id, Dispute.version, Dispute.state, Dispute.stage)).all()
        )
        texts = session.scalar(select(func.count()).select_from(AuditText))
        mails = session.scalar(select(func.count()).select_from(Notification))
    return tuple(audit), versions, texts, mails


@pytest.fixture
def dispute(raise_dispute: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return raise_dispute()


@pytest.fixture
def unchanged(sessions: sessionmaker[Session], dispute: dict[str, Any]) -> Iterator[None]:
    before = database_state(sessions)
    yield
    assert database_state(sessions) == before, "a refused request changed the database"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def post_action(
    client: TestClient, dispute: dict[str, Any], trigger: str, headers: dict[str, str], **body: Any
) -> Any:
    if trigger in AIMED_TRIGGERS:
        # Aimed at the version the test last saw, so each refusal is the one the test is about.
        body.setdefault("expected_version", dispute["version"])
    return client.post(f"/api/v1/disputes/{dispute['id']}/actions/{trigger}", json=body, headers=headers)


@pytest.mark.usefixtures("unchanged")
class TestRefusals:
    def test_no_token_is_401(self, client: TestClient, dispute: dict[str, Any]) -> None:
        response = post_action(client, dispute, "escalate", {}, reason="x")
        assert problem(response, 401)["type"].endswith("/unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"

    def test_inactive_persons_token_is_401(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        problem(post_action(client, dispute, "escalate", token_for("gone@example.gov.uk"), reason="x"), 401)

    def test_unknown_person_and_forged_token_are_401(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        problem(
            post_action(client, dispute, "escalate", token_for("stranger@example.gov.uk"), reason="x"), 401
        )
        forged = jwt.encode(
            {"email": IRO_EMAIL, "exp": 4102444800}, "not-the-secret-0123456789abcdef0123", algorithm="HS256"
        )
        problem(
            post_action(client, dispute, "escalate", {"Authorization": f"Bearer {forged}"}, reason="x"), 401
        )

    def test_not_allowed_now_is_409_with_the_same_allowed_actions_as_get(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        body = problem(post_action(client, dispute, "close", token_for(IRO_EMAIL), outcome="x"), 409)
        assert body["type"].endswith("/not-allowed-now")
        seen = client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(IRO_EMAIL)).json()[
            "allowed_actions"
        ]
        assert body["allowed_actions"] == seen
        assert "raise" not in seen and "timeout" not in seen and "close" not in seen

    def test_a_trigger_the_caller_may_never_use_is_403(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        assert problem(post_action(client, dispute, "escalate", token_for(TM_EMAIL), reason="x"), 403)[
            "type"
        ].endswith("/forbidden")
        problem(post_action(client, dispute, "redact", token_for(IRO_EMAIL), reason="x", text_id=1), 403)

    def test_timeout_is_the_schedulers_alone(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        problem(post_action(client, dispute, "timeout", token_for(IRO_EMAIL)), 404)

    def test_unknown_dispute_and_not_yours_are_404(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        unknown = "00000000-0000-4000-8000-000000000000"
        problem(client.get(f"/api/v1/disputes/{unknown}", headers=token_for(IRO_EMAIL)), 404)
        problem(
            client.post(
                f"/api/v1/disputes/{unknown}/actions/escalate",
                json={"reason": "x"},
                headers=token_for(IRO_EMAIL),
            ),
            404,
        )
        for who in ("iro2@example.gov.uk", "hocp@example.gov.uk", "tm2@example.gov.uk"):
            problem(client.get(f"/api/v1/disputes/{dispute['id']}", headers=token_for(who)), 404)
            problem(client.get(f"/api/v1/disputes/{dispute['id']}/audit", headers=token_for(who)), 404)
            problem(post_action(client, dispute, "escalate", token_for(who), reason="x"), 404)

    def test_unknown_trigger_is_404(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        body = problem(post_action(client, dispute, "approve", token_for(IRO_EMAIL)), 404)
        assert "escalate" in body["known_actions"]

    def test_malformed_body_is_422_naming_the_field(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        body = problem(
            client.post(
                "/api/v1/disputes", json=raise_body(categories=["nope"]), headers=token_for(IRO_EMAIL)
            ),
            422,
        )
        assert body["errors"][0]["field"] == "categories[0]"
        assert "permanency_delay" in body["errors"][0]["message"]
        missing = {k: v for k, v in raise_body().items() if k != "child_ref"}
        body = problem(client.post("/api/v1/disputes", json=missing, headers=token_for(IRO_EMAIL)), 422)
        assert [e["field"] for e in body["errors"]] == ["child_ref"]
        body = problem(post_action(client, dispute, "escalate", token_for(IRO_EMAIL), reasn="typo"), 422)
        assert body["errors"][0]["field"] == "reasn"
        broken = client.post(
            f"/api/v1/disputes/{dispute['id']}/actions/escalate",
            content=b"{not json",
            headers={**token_for(IRO_EMAIL), "Content-Type": "application/json"},
        )
        problem(broken, 422)

    def test_missing_trigger_fields_are_422(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        body = problem(post_action(client, dispute, "escalate", token_for(IRO_EMAIL)), 422)
        assert body["errors"] == [{"field": "reason", "message": "is required"}]
        body = problem(
            post_action(client, dispute, "resolve", token_for(TM_EMAIL), outcome="ok", outcome_code="maybe"),
            422,
        )
        assert body["errors"][0]["field"] == "outcome_code"
        body = problem(
            post_action(client, dispute, "escalate", token_for(IRO_EMAIL), reason="x", to_stage="nowhere"),
            422,
        )
        assert body["errors"][0]["field"] == "to_stage" and "head_of_service" in body["errors"][0]["message"]
        body = problem(
            post_action(
                client, dispute, "escalate", token_for(IRO_EMAIL), reason="x", to_stage="quality_assurance"
            ),
            409,
        )
        assert "escalate" in body["allowed_actions"]

    def test_stale_expected_version_is_409(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        body = problem(
            post_action(
                client, dispute, "acknowledge", token_for(TM_EMAIL), expected_version=dispute["version"] + 5
            ),
            409,
        )
        assert body["type"].endswith("/version-conflict") and body["current_version"] == dispute["version"]

    @pytest.mark.parametrize("trigger", sorted(AIMED_TRIGGERS))
    def test_an_unaimed_action_is_428_naming_both_ways_to_aim_it(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens, trigger: str
    ) -> None:
        # Bypasses post_action, which aims every request; `close` is not allowed now either, and 428 comes
        # before that 409.
        response = client.post(
            f"/api/v1/disputes/{dispute['id']}/actions/{trigger}",
            json={"reason": "x"},
            headers=token_for(IRO_EMAIL),
        )
        body = problem(response, 428)
        assert body["type"] == "/problems/precondition-required"
        assert "expected_version" in body["detail"] and "If-Match" in body["detail"]

    def test_403_and_404_come_before_428(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        url = f"/api/v1/disputes/{dispute['id']}/actions/escalate"
        problem(client.post(url, json={"reason": "x"}, headers=token_for(TM_EMAIL)), 403)
        problem(client.post(url, json={"reason": "x"}, headers=token_for("iro2@example.gov.uk")), 404)

    def test_a_stale_if_match_is_409_and_a_malformed_one_422(
        self, client: TestClient, dispute: dict[str, Any], token_for: Tokens
    ) -> None:
        url = f"/api/v1/disputes/{dispute['id']}/actions/escalate"
        stale = {**token_for(IRO_EMAIL), "If-Match": f'W/"{dispute["version"] + 1}"'}
        body = problem(client.post(url, json={"reason": "x"}, headers=stale), 409)
        assert body["type"].endswith("/version-conflict") and body["current_version"] == dispute["version"]
        for bad in ('"abc"', '"1", "2"'):
            malformed = {**token_for(IRO_EMAIL), "If-Match": bad}
            assert (
                problem(client.post(url, json={"reason": "x"}, headers=malformed), 422)["errors"][0]["field"]
                == "If-Match"
            )
        disagreeing = {**token_for(IRO_EMAIL), "If-Match": f'"{dispute["version"]}"'}
        problem(
            client.post(url, json={"reason": "x", "expected_version": 9}, headers=disagreeing),
            422,
        )
        # `*` names no version, so it does not aim the action.
        star = {**token_for(IRO_EMAIL), "If-Match": "*"}
        problem(client.post(url, json={"reason": "x"}, headers=star), 428)


def test_the_etag_of_a_read_aims_an_action_and_the_answer_carries_the_next_one(
    client: TestClient, raise_dispute: Callable[..., dict[str, Any]], token_for: Tokens
) -> None:
    d = raise_dispute()
    read = client.get(f"/api/v1/disputes/{d['id']}", headers=token_for(IRO_EMAIL))
    assert read.headers["ETag"] == f'"{d["version"]}"'
    weak = {**token_for(IRO_EMAIL), "If-Match": f"W/{read.headers['ETag']}"}
    moved = client.post(f"/api/v1/disputes/{d['id']}/actions/escalate", json={"reason": "x"}, headers=weak)
    assert moved.status_code == 200, moved.text
    assert moved.headers["ETag"] == f'"{moved.json()["version"]}"' == f'"{d["version"] + 1}"'
    # Actions that do not move the dispute along need no aim.
    tm = client.post(f"/api/v1/disputes/{d['id']}/actions/acknowledge", headers=token_for(TM_EMAIL))
    assert tm.status_code == 200, tm.text


def test_refer_to_cafcass_is_refused_for_other_case_types(
    client: TestClient,
    raise_dispute: Callable[..., dict[str, Any]],
    token_for: Tokens,
    sessions: sessionmaker[Session],
) -> None:
    d = raise_dispute(case_type="child_protection")
    before = database_state(sessions)
    body = problem(
        post_action(
            client, d, "refer_to_cafcass", token_for(IRO_EMAIL), reason="x", referred_on="2018-01-08"
        ),
        409,
    )
    assert "refer_to_cafcass" not in body["allowed_actions"]
    assert database_state(sessions) == before
