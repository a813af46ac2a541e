"""Reading a dispute by its email link (SPEC 10, "Reading by link"): a one-time code, sent in an email of its
own, opens a link session in which the link's page shows the dispute's texts; /links/renew sends fresh links
for expired ones and answers the same for any address. Real SQLite (and PostgreSQL through `backend`), the
real app, a real SMTP server, and the clock moved by hand."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from api.app import Mode, create_app
from dispute_service.config import Settings
from dispute_service.housekeeping import PurgeReport, purge_expired
from dispute_service.models import ActionLink, LinkCode, LinkSession, Notification, RenewalRequest
from notifications import link_reading
from notifications.dispatcher import DispatchReport
from states.policy import Policy
from tests.factories import HOCP_EMAIL, STAGES, TM_EMAIL, fire_timer, raise_dispute
from tests.mail import Mailbox, links_in
from tests.pages import csrf_of, post_link

SUMMARY = "SECRET-SUMMARY permanence plan has drifted for Jamie"
IRO_REASON = "SECRET-REASON the plan has drifted for a year already"
NONCE = re.compile(r'nonce="[^"]*"')


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        yield captured


def _link(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    trigger: str = "respond",
    **raised: Any,
) -> tuple[str, str]:
    """Raise a dispute and send its emails: the reference, and the token of the link for `trigger`."""
    reference = raise_dispute(sessions, policy, clock.now, **raised).dispute.reference
    send_mail()
    person = HOCP_EMAIL if raised.get("start_stage") == STAGES[2] else TM_EMAIL
    return reference, links_in(mailbox.to(person)[0])[trigger]


def _ask_code(client: TestClient, token: str) -> Any:
    page = client.get(f"/links/{token}")
    assert page.status_code == 200 and f'action="/links/{token}/code"' in page.text
    return client.post(f"/links/{token}/code", data={"csrf_token": csrf_of(page.text)})


def _code_email(mailbox: Mailbox, person: str = TM_EMAIL) -> tuple[EmailMessage, str]:
    [*_, last] = [m for m in mailbox.to(person) if "your code" in str(m["Subject"])]
    found = re.search(r"^(\d{6})$", _plain(last), re.M)
    assert found, "the code email holds no code"
    return last, found.group(1)


def _plain(message: EmailMessage) -> str:
    return str(message.get_body(("plain",)).get_content()).replace("\r\n", "\n")


def _enter(client: TestClient, token: str, code: str) -> Any:
    page = client.get("/links/renew")  # any page of ours hands out the form's CSRF token and its cookie
    return client.post(
        f"/links/{token}/read",
        data={"csrf_token": csrf_of(page.text), "code": code},
        follow_redirects=False,
    )


def test_the_right_code_once_shows_the_texts_for_30_minutes_and_acting_still_needs_only_the_link(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
    logs: list[dict[str, Any]],
) -> None:
    reference, token = _link(
        sessions, policy, clock, mailbox, send_mail, start_stage=STAGES[2], reason=IRO_REASON
    )
    before = app_client.get(f"/links/{token}")
    assert SUMMARY not in before.text and IRO_REASON not in before.text

    sent = _ask_code(app_client, token)
    assert sent.status_code == 200
    assert "We have sent a code to the email address the link was sent to" in sent.text
    send_mail()
    message, code = _code_email(mailbox, HOCP_EMAIL)
    # The code email holds the code and the reference, nothing else: no child reference, no link, no text.
    assert _plain(message) == (
        f"Your code to read dispute {reference} on the page of its link:\n\n{code}\n\n"
        "The code works once, within 15 minutes. If you did not ask for it, you need do nothing: without it, "
        "nobody can read the dispute through your link.\n"
    )
    with sessions() as session:
        assert session.scalars(select(LinkCode.code_hash)).one() != code

    opened = _enter(app_client, token, code)
    assert opened.status_code == 303 and opened.headers["location"] == f"/links/{token}#dispute-texts"
    cookie = opened.headers["set-cookie"]
    assert "dispute_link_session=" in cookie and "HttpOnly" in cookie and "Path=/links" in cookie
    assert "samesite=lax" in cookie.lower()
    page = app_client.get(f"/links/{token}")
    assert SUMMARY in page.text and IRO_REASON in page.text

    # Single use: the same code again is refused, and changes nothing.
    again = _enter(app_client, token, code)
    assert again.status_code == 410 and "expired or has already been used" in again.text

    clock.advance(minutes=29)
    assert SUMMARY in app_client.get(f"/links/{token}").text
    clock.advance(minutes=1, seconds=1)
    later = app_client.get(f"/links/{token}")
    assert later.status_code == 200 and SUMMARY not in later.text and IRO_REASON not in later.text

    # Acting needed none of it: the link alone does.
    done = post_link(app_client, token, data={"response": "our answer"})
    assert done.status_code == 200, done.text

    # No log line holds the code, the token, the session's token or any free text.
    with sessions() as session:
        session_hash = session.scalars(select(LinkSession.token_hash)).one()
    written = repr(logs)
    session_token = cookie.split("=", 1)[1].split(";")[0].strip('"').rsplit(".", 1)[0]
    for secret in (code, token, session_token, "SECRET", "Jamie"):
        assert secret not in written, secret
    assert session_hash not in written
    assert any(e["event"] == "link.session_opened" for e in logs)


def test_a_code_expires_after_15_minutes_and_a_new_code_replaces_an_earlier_one(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    _, token = _link(sessions, policy, clock, mailbox, send_mail)
    _ask_code(app_client, token)
    send_mail()
    _, first = _code_email(mailbox)
    clock.advance(minutes=15, seconds=1)
    late = _enter(app_client, token, first)
    assert late.status_code == 410 and "expired" in late.text

    _ask_code(app_client, token)
    send_mail()
    _, second = _code_email(mailbox)
    _ask_code(app_client, token)
    send_mail()
    _, third = _code_email(mailbox)
    if second != third:
        replaced = _enter(app_client, token, second)
        assert replaced.status_code == 422 and "not right" in replaced.text
    assert _enter(app_client, token, third).status_code == 303
    with sessions() as session:
        # Replaced codes are gone; the used one stays, as a hash.
        assert len(session.scalars(select(LinkCode)).all()) == 1


def test_five_wrong_codes_spend_the_link_and_lock_it(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    _, token = _link(sessions, policy, clock, mailbox, send_mail)
    _ask_code(app_client, token)
    send_mail()
    _, code = _code_email(mailbox)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    # A malformed code costs no try.
    assert _enter(app_client, token, "12ab").status_code == 422
    for left in (4, 3, 2, 1):
        answer = _enter(app_client, token, wrong)
        assert answer.status_code == 422 and f"You have {left} more" in answer.text
    locked = _enter(app_client, token, wrong)
    assert locked.status_code == 409 and "no longer works" in locked.text
    with sessions() as session:
        assert session.scalars(select(ActionLink.used_at)).all().count(clock.now) == 1
    # The right code is no use now, and nor is the link, for reading or for acting.
    assert _enter(app_client, token, code).status_code == 409
    assert app_client.get(f"/links/{token}").status_code == 409
    assert post_link(app_client, token, data={"response": "too late"}).status_code == 409


def _renew(client: TestClient, email: str) -> Any:
    form = client.get("/links/renew")
    assert form.status_code == 200
    return client.post("/links/renew", data={"csrf_token": csrf_of(form.text), "email": email})


def test_renew_answers_the_same_for_any_address_and_sends_the_reference_and_a_fresh_link_and_nothing_else(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    reference, token = _link(sessions, policy, clock, mailbox, send_mail)
    with sessions() as session:
        expiry = max(session.scalars(select(ActionLink.expires_at)).all())
    clock.now = expiry + timedelta(minutes=1)
    assert app_client.get(f"/links/{token}").status_code == 410
    emails = len(mailbox.to(TM_EMAIL))

    known = _renew(app_client, TM_EMAIL.upper())
    unknown = _renew(app_client, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert NONCE.sub("", known.text) == NONCE.sub("", unknown.text)
    assert "Check your email" in known.text

    send_mail()
    [renewal] = mailbox.to(TM_EMAIL)[emails:]
    assert not [m for m in mailbox.messages if m["To"] == "nobody@example.org"]
    fresh = links_in(renewal)
    # One fresh link for each expired one the dispute still waits on.
    assert set(fresh) == set(links_in(mailbox.to(TM_EMAIL)[0])) == {"acknowledge", "respond", "resolve"}
    assert renewal["Subject"] == f"Dispute {reference}: a fresh link"
    assert _plain(renewal) == (
        f"A fresh link for dispute {reference}, as you asked.\n\n"
        + "".join(f"{label.capitalize()}:\nhttp://testserver/links/{t}\n\n" for label, t in fresh.items())
        + "Each link works once. Opening a link shows what it will do before anything happens.\n"
    )

    # The old link stays expired; the new one works.
    assert app_client.get(f"/links/{token}").status_code == 410
    assert post_link(app_client, fresh["respond"], data={"response": "our answer"}).status_code == 200

    # Asked again while a fresh link is live: nothing more is sent, and the answer is the same.
    assert NONCE.sub("", _renew(app_client, TM_EMAIL).text) == NONCE.sub("", unknown.text)
    send_mail()
    assert len(mailbox.to(TM_EMAIL)) == emails + 1


def test_renew_does_the_same_work_for_a_known_address_as_for_an_unknown_one_and_the_dispatcher_answers_it(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    """The answer's timing must not tell a known address from an unknown one: the request runs the same
    statements for both, and the lookup, and the email if any, wait for the dispatcher."""
    _, token = _link(sessions, policy, clock, mailbox, send_mail)
    with sessions() as session:
        clock.now = max(session.scalars(select(ActionLink.expires_at)).all()) + timedelta(minutes=1)
        queued_before = session.scalar(select(func.count()).select_from(Notification))
    emails = len(mailbox.to(TM_EMAIL))

    def statements_of(address: str) -> list[str]:
        form = app_client.get("/links/renew")
        run: list[str] = []

        def note(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            run.append(statement)

        engine = app_client.app.state.sessions.kw["bind"]  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", note)
        try:
            data = {"csrf_token": csrf_of(form.text), "email": address}
            answer = app_client.post("/links/renew", data=data)
        finally:
            event.remove(engine, "before_cursor_execute", note)
        assert answer.status_code == 200
        return run

    known, unknown = statements_of(TM_EMAIL), statements_of("nobody@example.org")
    assert known == unknown
    assert any(s.startswith("INSERT INTO renewal_requests") for s in known), known
    assert not any("action_links" in s or "notifications" in s for s in known), known
    with sessions() as session:
        assert session.scalars(select(RenewalRequest.email).order_by(RenewalRequest.id)).all() == [
            TM_EMAIL,
            "nobody@example.org",
        ]
        assert session.scalar(select(func.count()).select_from(Notification)) == queued_before

    send_mail()
    with sessions() as session:
        assert session.scalars(select(RenewalRequest)).all() == [], "each request is answered once, then gone"
    [renewal] = mailbox.to(TM_EMAIL)[emails:]
    assert renewal["Subject"].endswith("a fresh link")
    assert not [m for m in mailbox.messages if m["To"] == "nobody@example.org"]
    send_mail()
    assert len(mailbox.to(TM_EMAIL)) == emails + 1


@pytest.fixture
def tight_client(mail_settings: Settings, clock: Any, staff: list[str]) -> Iterator[TestClient]:
    tight = mail_settings.model_copy(
        update={"link_codes_per_address": 2, "link_renewals_per_address": 2, "link_reading_per_client": 7}
    )
    with TestClient(create_app(tight, mode=Mode.DEMO, clock=clock)) as client:
        yield client


def test_codes_and_renewals_are_rate_limited_per_address_and_per_client(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    tight_client: TestClient,
) -> None:
    _, token = _link(sessions, policy, clock, mailbox, send_mail)
    assert [_ask_code(tight_client, token).status_code for _ in range(2)] == [200, 200]
    third = _ask_code(tight_client, token)
    assert third.status_code == 429 and int(third.headers["retry-after"]) > 0

    assert [_renew(tight_client, "a@example.org").status_code for _ in range(2)] == [200, 200]
    over = _renew(tight_client, "a@example.org")
    assert over.status_code == 429 and int(over.headers["retry-after"]) > 0
    # Three code requests and three renewals counted for the client, and this one: its seventh, its last.
    assert _renew(tight_client, "b@example.org").status_code == 200
    by_client = _renew(tight_client, "c@example.org")
    assert by_client.status_code == 429 and "retry-after" in by_client.headers
    clock.advance(hours=1, seconds=1)
    assert _renew(tight_client, "a@example.org").status_code == 200


def test_a_link_session_opens_its_own_link_only_and_a_code_needs_the_forms_token(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    _, token = _link(sessions, policy, clock, mailbox, send_mail)
    other = links_in(mailbox.to(TM_EMAIL)[0])["acknowledge"]
    forged = app_client.post(f"/links/{token}/code", data={"csrf_token": "forged.token"})
    assert forged.status_code == 403
    send_mail()
    assert not [m for m in mailbox.to(TM_EMAIL) if "your code" in str(m["Subject"])]

    _ask_code(app_client, token)
    send_mail()
    _, code = _code_email(mailbox)
    assert _enter(app_client, token, code).status_code == 303
    assert SUMMARY in app_client.get(f"/links/{token}").text
    # The same person's other link, in the same browser, shows nothing until a code is entered for it.
    assert SUMMARY not in app_client.get(f"/links/{other}").text


def test_an_expired_link_points_to_renew_and_a_stage_the_dispute_has_left_is_not_renewed(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    _, token = _link(sessions, policy, clock, mailbox, send_mail)
    with sessions() as session:
        link = session.scalars(select(ActionLink)).first()
        assert link is not None
        dispute_id, entry_seq, expiry = link.dispute_id, link.stage_entry_seq, link.expires_at
    clock.now = expiry + timedelta(minutes=1)
    expired = app_client.get(f"/links/{token}")
    assert expired.status_code == 410 and 'href="/links/renew"' in expired.text
    # The stage times out: the expired links are for a stage the dispute has left, so nothing is renewed.
    assert fire_timer(sessions, policy, dispute_id, entry_seq, clock.now) is not None
    with sessions.begin() as session:
        assert link_reading.renew(session, policy, TM_EMAIL, clock.now) == 0


def test_a_used_code_and_an_ended_link_session_purged_a_day_later_get_the_answers_they_got_before(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    _, token = _link(sessions, policy, clock, mailbox, send_mail)
    _ask_code(app_client, token)
    send_mail()
    _, code = _code_email(mailbox)
    assert _enter(app_client, token, code).status_code == 303
    # The link session ended 30 minutes later, and that was a day ago; the link itself is still live.
    clock.advance(days=1, minutes=31)

    def answers() -> tuple[int, str, int, str]:
        page = app_client.get(f"/links/{token}")
        again = _enter(app_client, token, code)
        return page.status_code, NONCE.sub("", page.text), again.status_code, NONCE.sub("", again.text)

    before = answers()
    assert before[0] == 200 and SUMMARY not in before[1] and before[2] == 410
    assert purge_expired(sessions, clock.now) == PurgeReport(link_codes=1, link_sessions=1)
    assert answers() == before


def test_wrong_tries_outlive_housekeeping_until_the_link_is_spent(
    sessions: sessionmaker[Session],
    policy: Policy,
    clock: Any,
    staff: list[str],
    mailbox: Mailbox,
    send_mail: Callable[[], DispatchReport],
    app_client: TestClient,
) -> None:
    _, token = _link(sessions, policy, clock, mailbox, send_mail)
    _ask_code(app_client, token)
    send_mail()
    _, code = _code_email(mailbox)
    for left in (4, 3, 2, 1):
        assert f"You have {left} more" in _enter(app_client, token, f"{(int(code) + 1) % 1_000_000:06d}").text
    # The code expired two days ago, but its link can still take a new code, which inherits the four tries.
    clock.advance(days=2)
    assert purge_expired(sessions, clock.now) == PurgeReport()
    _ask_code(app_client, token)
    send_mail()
    _, fresh = _code_email(mailbox)
    assert _enter(app_client, token, f"{(int(fresh) + 1) % 1_000_000:06d}").status_code == 409

    # Spent: a day later its code goes, and the link's answer is the one it gave before.
    clock.advance(days=1, minutes=1)
    before = app_client.get(f"/links/{token}")
    assert before.status_code == 409
    assert purge_expired(sessions, clock.now) == PurgeReport(link_codes=1)
    after = app_client.get(f"/links/{token}")
    assert (after.status_code, NONCE.sub("", after.text)) == (409, NONCE.sub("", before.text))
