"""Disputes on partner ladders (SPEC 10), end to end: raised with named contacts, climbed by timeouts on an
injected clock, each contact emailed through a real SMTP server (aiosmtpd) and acting only by its link, and
the audit naming them, `external`, `email_link` and their organisation. A named stage with nobody named
makes the dispute wait for the IRO, who is emailed and names someone; a contact owns only their stage."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.errors import InvalidInput
from dispute_service.models import AuditEntry, Contact, Organisation
from dispute_service.partners import import_contacts
from dispute_service.queries import DisputeSnapshot
from dispute_service.sweep import sweep
from notifications import links
from notifications.dispatcher import DispatchReport
from states.policy import Policy
from tests.factories import IRO_EMAIL, IRO_MANAGER_EMAIL, TEST_SECRET, fetch, raise_dispute
from tests.mail import Mailbox, links_in
from tests.pages import csrf_of, post_link

Tokens = Callable[[str], dict[str, str]]
NURSE, DOCTOR, ICB = "nurse@nhs.example", "doctor@nhs.example", "icb@nhs.example"
THEIR_TM, THEIR_HOS, THEIR_DIRECTOR = "tm@shire.example", "hos@shire.example", "director@shire.example"
OTHER_TRUST_NURSE = "nurse@other-trust.example"


@pytest.fixture
def partners(sessions: sessionmaker[Session], clock: Any) -> None:
    """Two NHS trusts (partners) and a neighbouring council (another authority), with their contacts."""
    with sessions.begin() as session:
        for org_id, name, kind in (
            ("nhs_trust", "An NHS trust", "partner"),
            ("other_trust", "Another NHS trust", "partner"),
            ("shire", "Shire County Council", "other_authority"),
        ):
            session.add(
                Organisation(id=org_id, name=name, kind=kind, created_at=clock.now, updated_at=clock.now)
            )
        session.flush()
        for email, org_id in (
            (NURSE, "nhs_trust"),
            (DOCTOR, "nhs_trust"),
            (ICB, "nhs_trust"),
            (OTHER_TRUST_NURSE, "other_trust"),
            (THEIR_TM, "shire"),
            (THEIR_HOS, "shire"),
            (THEIR_DIRECTOR, "shire"),
        ):
            session.add(
                Contact(
                    email=email,
                    name="A Contact",
                    organisation_id=org_id,
                    active=True,
                    created_at=clock.now,
                    updated_at=clock.now,
                )
            )


def raise_on(sessions: sessionmaker[Session], policy: Policy, clock: Any, **fields: Any) -> DisputeSnapshot:
    return raise_dispute(sessions, policy, clock.now, team_manager_email=None, **fields)


def time_out(sessions: sessionmaker[Session], policy: Policy, clock: Any, dispute_id: uuid.UUID) -> None:
    """Move the injected clock just past the current stage's escalation moment and let the sweep act."""
    escalate_at = fetch(sessions, dispute_id).escalate_at
    assert escalate_at is not None
    clock.now = escalate_at + timedelta(minutes=1)
    report = sweep(sessions, policy, clock)
    assert [f.trigger for f in report.fired] == ["timeout"]


def latest_links(mailbox: Mailbox, recipient: str) -> dict[str, str]:
    received = mailbox.to(recipient)
    assert received, f"nothing was sent to {recipient}"
    return links_in(received[-1])


def by_link(sessions: sessionmaker[Session], dispute_id: uuid.UUID) -> list[AuditEntry]:
    with sessions() as session:
        query = select(AuditEntry).where(
            AuditEntry.dispute_id == dispute_id, AuditEntry.channel == "email_link"
        )
        return list(session.scalars(query.order_by(AuditEntry.seq)))


def test_an_nhs_dispute_climbs_by_timeouts_and_each_named_contact_acts_by_link(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    partners: None,
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
    token_for: Tokens,
) -> None:
    raised = raise_on(
        sessions,
        policy,
        clock,
        ladder="health",
        respondent_email=NURSE,
        contacts={"designated_doctor": DOCTOR},
        their_reference="NHS/2018/77",
    )
    d = raised.dispute
    assert (d.ladder, d.organisation_id, d.stage, d.state) == (
        "health",
        "nhs_trust",
        "designated_nurse",
        "awaiting_response",
    )
    assert (d.owner_email, d.owner_role) == (NURSE, "external")

    # The nurse is emailed the owner's links, and acknowledges through one.
    send_mail()
    nurse_links = latest_links(mailbox, NURSE)
    assert set(nurse_links) == {"acknowledge", "respond", "resolve"}
    assert post_link(app_client, nurse_links["acknowledge"], follow_redirects=False).status_code == 303

    # The nurse's stage times out: the named doctor's begins, and the doctor is emailed.
    time_out(sessions, policy, clock, d.id)
    moved = fetch(sessions, d.id)
    assert (moved.stage, moved.state, moved.owner_email) == ("designated_doctor", "awaiting_response", DOCTOR)
    send_mail()
    doctor_links = latest_links(mailbox, DOCTOR)
    assert set(doctor_links) == {"acknowledge", "respond", "resolve"}
    # The nurse's links are for a stage the dispute has left.
    assert post_link(app_client, nurse_links["respond"], data={"response": "late"}).status_code == 409
    assert post_link(app_client, doctor_links["acknowledge"], follow_redirects=False).status_code == 303

    # Nobody is named for the ICB's stage: the timeout waits for the IRO, who is emailed.
    time_out(sessions, policy, clock, d.id)
    waiting = fetch(sessions, d.id)
    assert (waiting.stage, waiting.state, waiting.awaiting_contact_for) == (
        "designated_doctor",
        "awaiting_iro_decision",
        "icb_director_of_nursing",
    )
    with sessions() as session:
        timeout = session.scalars(
            select(AuditEntry).where(AuditEntry.dispute_id == d.id).order_by(AuditEntry.seq.desc())
        ).first()
        assert timeout is not None and timeout.trigger == "timeout"
        details = json.loads(timeout.details)
        assert details["reason"] == "next_contact_needed"
        assert details["waiting_for_stage"] == "icb_director_of_nursing"
    send_mail()
    assert mailbox.to(IRO_EMAIL)[-1]["Subject"].endswith("name a contact for the next stage")

    # The IRO names the ICB's contact: the dispute enters that stage at once, and the contact is emailed.
    iro = token_for(IRO_EMAIL)
    named = app_client.post(
        f"/api/v1/disputes/{d.id}/actions/name_contact",
        json={"stage": "icb_director_of_nursing", "contact_email": ICB},
        headers=iro,
    )
    assert named.status_code == 200, named.text
    body = named.json()
    assert (body["stage"], body["state"], body["owner"], body["owner_role"]) == (
        "icb_director_of_nursing",
        "awaiting_response",
        ICB,
        "external",
    )
    assert body["ladder"] == "health" and body["organisation"] == "nhs_trust"
    assert body["their_reference"] == "NHS/2018/77"
    assert body["contacts"] == {
        "designated_nurse": NURSE,
        "designated_doctor": DOCTOR,
        "icb_director_of_nursing": ICB,
    }
    send_mail()
    icb_links = latest_links(mailbox, ICB)
    responded = post_link(
        app_client,
        icb_links["respond"],
        data={"response": "SECRET-RESPONSE plan agreed"},
        follow_redirects=False,
    )
    assert responded.status_code == 303

    # The audit names each contact as the actor, in the external capacity, by email link, for their trust.
    acted = by_link(sessions, d.id)
    assert [(e.actor, e.actor_role, e.trigger) for e in acted] == [
        (NURSE, "external", "acknowledge"),
        (DOCTOR, "external", "acknowledge"),
        (ICB, "external", "respond"),
    ]
    assert all(json.loads(e.details)["organisation"] == "nhs_trust" for e in acted)
    # The IRO is told of the response, with their own links.
    send_mail()
    assert set(links_in(mailbox.to(IRO_EMAIL)[-1])) == {"resolve", "escalate"}


def test_an_other_authority_dispute_climbs_by_timeouts_to_the_iros_decision(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    partners: None,
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    d = raise_on(
        sessions,
        policy,
        clock,
        ladder="other_authority",
        respondent_email=THEIR_TM,
        contacts={"their_head_of_service": THEIR_HOS, "their_director": THEIR_DIRECTOR},
    ).dispute
    for contact, stage in (
        (THEIR_TM, "their_team_manager"),
        (THEIR_HOS, "their_head_of_service"),
        (THEIR_DIRECTOR, "their_director"),
    ):
        now = fetch(sessions, d.id)
        assert (now.stage, now.owner_email, now.owner_role) == (stage, contact, "external")
        send_mail()
        assert post_link(app_client, latest_links(mailbox, contact)["acknowledge"]).status_code == 200
        time_out(sessions, policy, clock, d.id)

    # After the last stage the IRO decides, and the IRO and the IRO managers are told.
    ended = fetch(sessions, d.id)
    assert (ended.stage, ended.state, ended.escalate_at) == ("their_director", "awaiting_iro_decision", None)
    assert ended.next_reminder_at is not None
    send_mail()
    for recipient in (IRO_EMAIL, IRO_MANAGER_EMAIL):
        assert mailbox.to(recipient)[-1]["Subject"].endswith(
            "has reached the end of its ladder: the IRO decides"
        )
    acted = by_link(sessions, d.id)
    assert [(e.actor, e.actor_role, e.trigger) for e in acted] == [
        (THEIR_TM, "external", "acknowledge"),
        (THEIR_HOS, "external", "acknowledge"),
        (THEIR_DIRECTOR, "external", "acknowledge"),
    ]
    assert {json.loads(e.details)["organisation"] for e in acted} == {"shire"}
    with sessions() as session:
        timeouts = session.scalars(
            select(AuditEntry).where(AuditEntry.dispute_id == d.id, AuditEntry.trigger == "timeout")
        ).all()
        assert [(t.actor, t.channel) for t in timeouts] == [("system", "scheduler")] * 3
        assert json.loads(timeouts[-1].details)["reason"] == "ladder_end"


def test_a_contact_cannot_act_on_a_stage_they_do_not_own_nor_use_a_bearer_token(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    partners: None,
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
    token_for: Tokens,
) -> None:
    d = raise_on(
        sessions,
        policy,
        clock,
        ladder="health",
        respondent_email=NURSE,
        contacts={"designated_doctor": DOCTOR},
    ).dispute
    # A link made out to the doctor (named for a later stage) for the nurse's stage is refused, and so is
    # one made out to a contact of another trust.
    with sessions.begin() as session:
        dispute = fetch(sessions, d.id)
        tokens = [
            links.issue(
                session,
                TEST_SECRET,
                person_email=person,
                dispute=dispute,
                trigger="respond",
                expires_at=clock.now + timedelta(days=30),
                now=clock.now,
            )
            for person in (DOCTOR, OTHER_TRUST_NURSE)
        ]
    for token in tokens:
        page = app_client.get(f"/links/{token}")
        assert page.status_code == 403 and "no longer yours" in page.text
        assert post_link(app_client, token, data={"response": "SECRET not mine"}).status_code == 403
    assert by_link(sessions, d.id) == []
    # A contact never holds a bearer token that works.
    for contact in (NURSE, DOCTOR):
        assert app_client.get("/api/v1/disputes", headers=token_for(contact)).status_code == 401
        assert app_client.get(f"/api/v1/disputes/{d.id}", headers=token_for(contact)).status_code == 401


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ladder": "nowhere"}, "ladder"),
        ({"ladder": "health", "respondent_email": "nobody@nhs.example"}, "respondent_email"),
        ({"ladder": "health", "respondent_email": THEIR_TM}, "respondent_email"),
        (
            {"ladder": "health", "respondent_email": NURSE, "contacts": {"cafcass": DOCTOR}},
            "contacts.cafcass",
        ),
        (
            {
                "ladder": "health",
                "respondent_email": NURSE,
                "contacts": {"designated_doctor": OTHER_TRUST_NURSE},
            },
            "contacts.designated_doctor",
        ),
        (
            {
                "ladder": "health",
                "respondent_email": NURSE,
                "team_manager_email": None,
                "their_reference": "a b",
            },
            "their_reference",
        ),
        ({"respondent_email": NURSE}, "respondent_email"),
    ],
)
def test_raising_on_a_partner_ladder_refuses_what_does_not_fit_and_names_the_field(
    sessions: sessionmaker[Session],
    staff: list[str],
    partners: None,
    app_client: TestClient,
    token_for: Tokens,
    fields: dict[str, Any],
    field: str,
) -> None:
    from tests.factories import raise_body

    body = raise_body(**fields)
    if fields.get("ladder", "own") != "own":
        body.pop("team_manager_email")
    response = app_client.post("/api/v1/disputes", json=body, headers=token_for(IRO_EMAIL))
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_the_iro_hands_a_named_stage_to_another_contact_of_the_same_organisation_only(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    partners: None,
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
    token_for: Tokens,
) -> None:
    d = raise_on(sessions, policy, clock, ladder="health", respondent_email=NURSE).dispute
    iro = token_for(IRO_EMAIL)
    read = app_client.get(f"/api/v1/disputes/{d.id}", headers=iro).json()
    assert "reassign" in read["allowed_actions"], "handing on a partner's stage is the IRO's act"
    url = f"/api/v1/disputes/{d.id}/actions/reassign"
    # Not a contact of the dispute's organisation (another trust's nurse), nor a member of staff.
    for wrong in (OTHER_TRUST_NURSE, "tm@example.gov.uk"):
        refused = app_client.post(url, json={"owner_email": wrong}, headers=iro)
        assert refused.status_code == 422 and "owner_email" in refused.text, refused.text
    refused = app_client.post(url, json={"owner_email": NURSE}, headers=iro)
    assert refused.status_code == 422 and "already owns" in refused.text
    moved = app_client.post(url, json={"owner_email": DOCTOR, "reason": "SECRET on leave"}, headers=iro)
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["owner"] == DOCTOR and body["contacts"]["designated_nurse"] == DOCTOR
    # The new owner is emailed the stage's links and acts through them; the nurse's old link is spent.
    send_mail()
    assert "respond" in latest_links(mailbox, DOCTOR)
    done = post_link(app_client, latest_links(mailbox, DOCTOR)["respond"], data={"response": "SECRET ok"})
    assert done.status_code == 200, done.text
    [entry] = by_link(sessions, d.id)
    assert (entry.actor, entry.actor_role, entry.trigger) == (DOCTOR, "external", "respond")


def test_a_contact_holding_a_stage_cannot_be_deactivated_or_moved_until_it_is_handed_on(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    partners: None,
    app_client: TestClient,
    token_for: Tokens,
    tmp_path: Any,
) -> None:
    d = raise_on(
        sessions,
        policy,
        clock,
        ladder="health",
        respondent_email=NURSE,
        contacts={"designated_doctor": DOCTOR},
    ).dispute
    admin = token_for("admin@example.gov.uk")
    for who, change in ((NURSE, {"active": False}), (DOCTOR, {"organisation": "other_trust"})):
        refused = app_client.patch(f"/api/v1/contacts/{who}", json=change, headers=admin)
        assert refused.status_code == 409 and d.reference in refused.text, refused.text
    # The contacts import refuses the same move, by line, and loads nothing.
    csv = tmp_path / "contacts.csv"
    csv.write_text(f"name,email,organisation\nA Contact,{NURSE},other_trust\n")
    with pytest.raises(InvalidInput) as refusal, sessions.begin() as session:
        import_contacts(session, csv, clock.now, audit_key=TEST_SECRET)
    assert refusal.value.errors == [("line 2", f"{NURSE} holds stages of open disputes {d.reference}")]
    # Handed on, the nurse may go.
    iro = token_for(IRO_EMAIL)
    moved = app_client.post(
        f"/api/v1/disputes/{d.id}/actions/reassign", json={"owner_email": ICB}, headers=iro
    )
    assert moved.status_code == 200, moved.text
    assert (
        app_client.patch(f"/api/v1/contacts/{NURSE}", json={"active": False}, headers=admin).status_code
        == 200
    )


def test_a_contact_reads_the_dispute_on_their_link_page_with_a_one_time_code(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    partners: None,
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    raise_on(
        sessions, policy, clock, ladder="health", respondent_email=NURSE, summary="SECRET the plan drifts"
    )
    send_mail()
    token = latest_links(mailbox, NURSE)["respond"]
    page = app_client.get(f"/links/{token}")
    assert page.status_code == 200 and "SECRET the plan drifts" not in page.text, (
        "the link alone shows no text"
    )
    asked = app_client.post(f"/links/{token}/code", data={"csrf_token": csrf_of(page.text)})
    assert asked.status_code == 200, asked.text
    send_mail()
    [*_, code_email] = [m for m in mailbox.to(NURSE) if "your code" in str(m["Subject"])]
    code = re.search(r"^(\d{6})$", code_email.get_body(("plain",)).get_content().replace("\r\n", "\n"), re.M)
    assert code is not None
    form = app_client.get("/links/renew")
    read = app_client.post(
        f"/links/{token}/read", data={"csrf_token": csrf_of(form.text), "code": code.group(1)}
    )
    assert read.status_code == 200 and "SECRET the plan drifts" in read.text


def test_a_partner_disputes_emails_carry_the_other_sides_reference_and_no_name(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    partners: None,
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
) -> None:
    raise_on(sessions, policy, clock, ladder="health", respondent_email=NURSE, their_reference="NHS-42/7")
    send_mail()
    [message] = mailbox.to(NURSE)
    plain = message.get_body(("plain",)).get_content()
    assert "Theirs:   NHS-42/7" in plain
    assert "Their reference</th><td>NHS-42/7" in message.get_body(("html",)).get_content()
    assert "A Contact" not in plain, "no contact's name, as no person's name, is in an email"
