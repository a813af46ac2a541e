"""The dispute pages: raise through the form (its errors, the start-stage bypass and the human-rights rule),
the dashboards and their tags, a dispute's timeline and actions, and a stale form's "this dispute changed"
page. Each page calls the use case the API calls; these tests check what a person sees and sends."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape as html_unescape
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.models import AuditEntry, AuditText, Dispute
from tests.factories import (
    ADMIN_EMAIL,
    HOCP_EMAIL,
    IRO2_EMAIL,
    IRO_EMAIL,
    IRO_MANAGER_EMAIL,
    TM_EMAIL,
    FakeClock,
    post_dispute,
)
from tests.pages import form_fields

FORM = {
    "child_ref": "LCS-000777",
    "case_type": "looked_after",
    "categories": ["permanency_delay", "contact"],
    "summary": "SECRET-SUMMARY the plan has drifted",
    "team_manager_email": TM_EMAIL,
    "start_stage": "quality_assurance",
}


def _raise_form(pages: TestClient) -> dict[str, str]:
    page = pages.get("/disputes/new")
    assert page.status_code == 200, page.text
    return form_fields(page.text, "/disputes/new")


def _errors(html: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", m).strip()
        for m in re.findall(
            r'class="govuk-error-message"[^>]*>\s*<span[^>]*>Error:</span>(.*?)</p>', html, re.S
        )
    ]


def _disputes(sessions: sessionmaker[Session]) -> list[Dispute]:
    with sessions.begin() as session:
        return list(session.scalars(select(Dispute)).all())


def test_raising_through_the_form_makes_the_dispute_and_shows_it(
    pages: TestClient, sign_in: Callable[[str], str], sessions: sessionmaker[Session]
) -> None:
    sign_in(IRO_EMAIL)
    fields = _raise_form(pages)
    done = pages.post("/disputes/new", data={**fields, **FORM}, follow_redirects=False)
    assert done.status_code == 303
    [dispute] = _disputes(sessions)
    assert done.headers["location"] == f"/disputes/{dispute.id}?raised=1"
    assert (dispute.child_ref, dispute.categories, dispute.iro_email) == (
        "LCS-000777",
        ["permanency_delay", "contact"],
        IRO_EMAIL,
    )
    page = pages.get(done.headers["location"])
    assert f"Dispute {dispute.reference} raised" in page.text
    assert "SECRET-SUMMARY the plan has drifted" in page.text
    assert page.headers["cache-control"] == "no-store"
    with sessions.begin() as session:
        [entry] = session.scalars(select(AuditEntry)).all()
        assert (entry.actor, entry.channel) == (IRO_EMAIL, "web")


def test_sending_the_same_raise_form_twice_raises_one_dispute(
    pages: TestClient, sign_in: Callable[[str], str], sessions: sessionmaker[Session]
) -> None:
    sign_in(IRO_EMAIL)
    fields = _raise_form(pages)
    first = pages.post("/disputes/new", data={**fields, **FORM}, follow_redirects=False)
    again = pages.post("/disputes/new", data={**fields, **FORM}, follow_redirects=False)
    assert first.headers["location"] == again.headers["location"]
    assert len(_disputes(sessions)) == 1


def test_a_form_with_errors_shows_each_with_the_values_kept_and_changes_nothing(
    pages: TestClient, sign_in: Callable[[str], str], sessions: sessionmaker[Session]
) -> None:
    sign_in(IRO_EMAIL)
    fields = _raise_form(pages)
    sent = {
        **fields,
        "child_ref": "",
        "summary": "kept text",
        "team_manager_email": "",
        "sibling_refs": "A B",
    }
    page = pages.post("/disputes/new", data=sent)
    assert page.status_code == 422
    assert page.text.count('class="govuk-error-summary"') == 1
    errors = _errors(page.text)
    assert any(e.startswith("Child reference") for e in errors)
    assert "Select the case type" in errors and "Select at least one concern" in errors
    # The summary links each error to its field.
    assert 'href="#child_ref"' in page.text and 'href="#case_type"' in page.text
    assert "kept text" in page.text and 'value="A B"' in page.text
    assert page.text.startswith("<!DOCTYPE html>") and "<title>Error: Raise a dispute" in page.text
    assert _disputes(sessions) == []


def test_the_use_cases_refusals_are_shown_on_their_fields(
    pages: TestClient, sign_in: Callable[[str], str], sessions: sessionmaker[Session]
) -> None:
    sign_in(IRO_EMAIL)
    fields = _raise_form(pages)
    page = pages.post(
        "/disputes/new", data={**fields, **FORM, "child_ref": "bad ref!", "team_manager_email": IRO2_EMAIL}
    )
    assert page.status_code == 422
    assert 'href="#child_ref"' in page.text and 'href="#team_manager_email"' in page.text
    assert any("does not hold the team_manager role" in e for e in _errors(page.text))
    assert _disputes(sessions) == []


def test_starting_at_a_later_stage_needs_a_reason(
    pages: TestClient, sign_in: Callable[[str], str], sessions: sessionmaker[Session]
) -> None:
    sign_in(IRO_EMAIL)
    fields = _raise_form(pages)
    later = {**fields, **FORM, "start_stage": "head_of_service"}
    page = pages.post("/disputes/new", data=later)
    assert page.status_code == 422
    assert any(e.startswith("Reason for starting at a later stage is required") for e in _errors(page.text))
    done = pages.post("/disputes/new", data={**later, "reason": "urgent drift"}, follow_redirects=False)
    assert done.status_code == 303
    [dispute] = _disputes(sessions)
    assert dispute.stage == "head_of_service"


def test_a_human_rights_concern_cannot_start_at_the_qa_stage(
    pages: TestClient, sign_in: Callable[[str], str], sessions: sessionmaker[Session]
) -> None:
    sign_in(IRO_EMAIL)
    fields = _raise_form(pages)
    sent = {**fields, **FORM, "categories": ["human_rights_breach"]}
    page = pages.post("/disputes/new", data=sent)
    assert page.status_code == 422
    assert any("human_rights_breach concern starts at team_manager" in e for e in _errors(page.text))
    assert 'href="#start_stage"' in page.text
    done = pages.post(
        "/disputes/new",
        data={**sent, "start_stage": "team_manager", "reason": "rights"},
        follow_redirects=False,
    )
    assert done.status_code == 303


def test_only_an_iro_may_raise(pages: TestClient, sign_in: Callable[[str], str]) -> None:
    csrf = sign_in(TM_EMAIL)
    assert pages.get("/disputes/new").status_code == 403
    refused = pages.post("/disputes/new", data={**FORM, "csrf_token": csrf})
    assert refused.status_code == 403 and "govuk-template" in refused.text


def test_your_disputes_shows_the_iro_theirs_and_the_manager_those_waiting_on_them_with_tags(
    pages: TestClient,
    sign_in: Callable[[str], str],
    token_for: Callable[[str], dict[str, str]],
    clock: FakeClock,
) -> None:
    mine = post_dispute(pages.post, token_for(IRO_EMAIL), child_ref="MINE-1")
    other = post_dispute(pages.post, token_for(IRO2_EMAIL), child_ref="OTHER-1")
    sign_in(IRO_EMAIL)
    page = pages.get("/").text
    assert "MINE-1" in page and "OTHER-1" not in page
    assert "On time" in page and "govuk-tag--green" in page
    # Three working days later the first stage (5 working days) is due within two: amber. (A session
    # lasts 30 idle minutes, so the IRO signs in again each time.)
    clock.advance(days=3)
    sign_in(IRO_EMAIL)
    assert "Due soon" in pages.get("/").text
    # Past the deadline: red.
    clock.advance(days=5)
    sign_in(IRO_EMAIL)
    page = pages.get("/").text
    assert "Overdue" in page and "govuk-tag--red" in page
    pages.cookies.clear()
    sign_in(TM_EMAIL)
    page = pages.get("/").text
    assert "Disputes waiting on you" in page and "MINE-1" in page and "OTHER-1" in page
    pages.cookies.clear()
    sign_in(HOCP_EMAIL)
    assert "No dispute is waiting on you" in pages.get("/").text
    assert mine["id"] != other["id"]


def test_all_open_disputes_filter_sort_and_page(
    pages: TestClient,
    sign_in: Callable[[str], str],
    token_for: Callable[[str], dict[str, str]],
    clock: FakeClock,
) -> None:
    for n in range(27):
        post_dispute(pages.post, token_for(IRO_EMAIL if n % 2 else IRO2_EMAIL), child_ref=f"C-{n:02d}")
        clock.advance(minutes=1)
    sign_in(IRO_MANAGER_EMAIL)
    first = pages.get("/disputes")
    assert first.status_code == 200
    assert "27 open disputes found." in first.text
    refs = re.findall(r'<td class="govuk-table__cell">(C-\d\d)</td>', first.text)
    assert refs[:2] == ["C-00", "C-01"], "soonest due first"
    assert len(refs) == 25 and 'rel="next"' in first.text
    second = pages.get("/disputes?page=2")
    assert re.findall(r'<td class="govuk-table__cell">(C-\d\d)</td>', second.text) == ["C-25", "C-26"]
    newest = pages.get("/disputes?sort=raised")
    assert re.findall(r'<td class="govuk-table__cell">(C-\d\d)</td>', newest.text)[0] == "C-26"
    theirs = pages.get("/disputes", params={"iro": IRO_EMAIL})
    assert "13 open disputes found." in theirs.text
    assert "0 open disputes found." in pages.get("/disputes?overdue=yes").text
    assert "27 open disputes found." in pages.get("/disputes?stage=no-such-stage").text
    # The table scrolls inside a labelled, focusable region.
    assert re.search(
        r'class="app-table-scroll" role="region" aria-labelledby="open-caption" tabindex="0"', first.text
    )
    pages.cookies.clear()
    sign_in(IRO_EMAIL)
    assert pages.get("/disputes").status_code == 403
    pages.cookies.clear()
    sign_in(ADMIN_EMAIL)
    assert pages.get("/disputes").status_code == 200


def _act(pages: TestClient, dispute_id: str, trigger: str, **fields: str) -> Any:
    """Open the action from the dispute page, as a person does, and send its form."""
    page = pages.get(f"/disputes/{dispute_id}")
    if f'action="/disputes/{dispute_id}/actions/{trigger}"' in page.text:
        hidden = form_fields(page.text, f"/disputes/{dispute_id}/actions/{trigger}")
    else:
        assert f'href="/disputes/{dispute_id}/actions/{trigger}"' in page.text, f"{trigger} is not offered"
        form = pages.get(f"/disputes/{dispute_id}/actions/{trigger}")
        hidden = form_fields(form.text, f"/disputes/{dispute_id}/actions/{trigger}")
    return pages.post(
        f"/disputes/{dispute_id}/actions/{trigger}", data={**hidden, **fields}, follow_redirects=False
    )


def test_the_team_manager_acts_then_the_iro_escalates_and_the_next_manager_resolves(
    pages: TestClient,
    sign_in: Callable[[str], str],
    token_for: Callable[[str], dict[str, str]],
    sessions: sessionmaker[Session],
) -> None:
    d = post_dispute(pages.post, token_for(IRO_EMAIL))
    sign_in(TM_EMAIL)
    assert _act(pages, d["id"], "acknowledge").status_code == 303
    empty = _act(pages, d["id"], "respond", response="")
    assert empty.status_code == 422 and "Your response is required" in _errors(empty.text)
    assert _act(pages, d["id"], "respond", response="SECRET-RESPONSE we will review").status_code == 303
    pages.cookies.clear()
    sign_in(IRO_EMAIL)
    assert _act(pages, d["id"], "escalate", reason="not enough").status_code == 303
    pages.cookies.clear()
    sign_in(TM_EMAIL)
    resolved = _act(pages, d["id"], "resolve", outcome="plan changed", outcome_code="plan_changed")
    assert resolved.status_code == 303
    page = pages.get(resolved.headers["location"])
    assert "Done: resolve" in page.text and "Resolved" in page.text
    # The timeline, newest first, names who did what, and shows the texts.
    timeline = page.text[page.text.index("Timeline") :]
    order = [timeline.index(w) for w in ("Resolved", "Escalated", "Responded", "Acknowledged", "Raised")]
    assert order == sorted(order)
    assert "SECRET-RESPONSE we will review" in timeline and TM_EMAIL in timeline
    with sessions.begin() as session:
        dispute = session.scalars(select(Dispute)).one()
        assert (dispute.state, dispute.stage) == ("resolved", "team_manager")


def test_a_stale_form_gets_the_dispute_changed_page_and_does_nothing(
    pages: TestClient,
    sign_in: Callable[[str], str],
    token_for: Callable[[str], dict[str, str]],
    sessions: sessionmaker[Session],
) -> None:
    d = post_dispute(pages.post, token_for(IRO_EMAIL))
    sign_in(IRO_EMAIL)
    form_page = pages.get(f"/disputes/{d['id']}/actions/escalate")
    hidden = form_fields(form_page.text, f"/disputes/{d['id']}/actions/escalate")
    assert hidden["version"] == "1"
    # Meanwhile the team manager acknowledges through the API.
    moved = pages.post(
        f"/api/v1/disputes/{d['id']}/actions/acknowledge", json={}, headers=token_for(TM_EMAIL)
    )
    assert moved.status_code == 200, moved.text
    stale = pages.post(f"/disputes/{d['id']}/actions/escalate", data={**hidden, "reason": "go up"})
    assert stale.status_code == 409
    assert "This dispute changed" in stale.text and "Nothing you sent was done" in stale.text
    assert "Acknowledged" in stale.text, "it shows the dispute as it is now"
    with sessions.begin() as session:
        dispute = session.scalars(select(Dispute)).one()
        assert (dispute.stage, dispute.version) == ("quality_assurance", 2)


def test_an_action_not_offered_now_is_refused_with_a_page(
    pages: TestClient, sign_in: Callable[[str], str], token_for: Callable[[str], dict[str, str]]
) -> None:
    d = post_dispute(pages.post, token_for(IRO_EMAIL))
    csrf = sign_in(HOCP_EMAIL)
    assert pages.get(f"/disputes/{d['id']}").status_code == 404, "not theirs to read"
    pages.cookies.clear()
    csrf = sign_in(TM_EMAIL)
    assert pages.get(f"/disputes/{d['id']}/actions/escalate").status_code == 409
    refused = pages.post(
        f"/disputes/{d['id']}/actions/escalate", data={"csrf_token": csrf, "version": "1", "reason": "x"}
    )
    assert refused.status_code == 403 and "govuk-template" in refused.text
    assert (
        pages.post(
            f"/disputes/{d['id']}/actions/nonsense", data={"csrf_token": csrf, "version": "1"}
        ).status_code
        == 404
    )
    assert (
        pages.post(f"/disputes/{d['id']}/actions/acknowledge", data={"csrf_token": csrf}).status_code == 422
    )


def test_unknown_and_malformed_dispute_addresses_get_error_pages(
    pages: TestClient, sign_in: Callable[[str], str]
) -> None:
    sign_in(IRO_EMAIL)
    for path, status in [
        ("/disputes/not-a-uuid", 422),
        ("/disputes/00000000-0000-0000-0000-000000000000", 404),
    ]:
        page = pages.get(path)
        assert page.status_code == status
        assert page.headers["content-type"].startswith("text/html") and "govuk-template" in page.text


def test_odd_digits_and_nul_in_page_forms_are_refused_not_failed(
    pages: TestClient,
    sign_in: Callable[[str], str],
    token_for: Callable[[str], dict[str, str]],
    sessions: sessionmaker[Session],
) -> None:
    d = post_dispute(pages.post, token_for(IRO_EMAIL))
    csrf = sign_in(IRO_EMAIL)
    actions = f"/disputes/{d['id']}/actions"
    sent = [
        (f"{actions}/escalate", {"version": "\u00b2", "reason": "x"}),
        (f"{actions}/extend", {"version": "1", "reason": "x", "working_days": "\u00b9"}),
        (
            f"{actions}/hold",
            {
                "version": "1",
                "reason": "x",
                "review_on-day": "\u00b2",
                "review_on-month": "1",
                "review_on-year": "2030",
            },
        ),
        (
            f"{actions}/hold",
            {
                "version": "1",
                "reason": "x",
                "review_on-day": "9" * 5000,
                "review_on-month": "1",
                "review_on-year": "2030",
            },
        ),
        (f"{actions}/escalate", {"version": "1", "reason": "a\x00b"}),
        ("/disputes/new", {**FORM, "summary": "a\x00b"}),
    ]
    for path, data in sent:
        answer = pages.post(path, data={**data, "csrf_token": csrf})
        assert answer.status_code in (409, 422), (path, answer.status_code)
        assert "govuk-template" in answer.text
    with sessions.begin() as session:
        dispute = session.scalars(select(Dispute)).one()
        assert dispute.version == 1, "nothing changed"


def _form_values(html: str, action: str) -> dict[str, Any]:
    """What a browser would send from the form as shown: its hidden fields, text boxes, checked boxes and
    radios."""
    start = html.index(f'action="{action}"')
    form = html[start : html.index("</form>", start)]
    values: dict[str, Any] = form_fields(html, action)
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name is None or 'type="hidden"' in tag:
            continue
        if 'type="checkbox"' in tag or 'type="radio"' in tag:
            if "checked" in tag and value is not None:
                if 'type="checkbox"' in tag:
                    values.setdefault(name.group(1), []).append(value.group(1))
                else:
                    values[name.group(1)] = value.group(1)
        else:
            values[name.group(1)] = html_unescape(value.group(1)) if value else ""
    return values


def test_correcting_the_details_records_only_what_changed(
    pages: TestClient,
    sign_in: Callable[[str], str],
    token_for: Callable[[str], dict[str, str]],
    sessions: sessionmaker[Session],
) -> None:
    d = post_dispute(pages.post, token_for(IRO_EMAIL), child_ref="LCS-000111", sibling_refs=["LCS-000112"])
    sign_in(IRO_EMAIL)
    page = pages.get(f"/disputes/{d['id']}")
    assert f'href="/disputes/{d["id"]}/actions/amend"' in page.text
    action = f"/disputes/{d['id']}/actions/amend"
    shown = _form_values(pages.get(action).text, action)
    # The form shows the details as they are.
    assert (shown["child_ref"], shown["sibling_refs"], shown["case_type"]) == (
        "LCS-000111",
        "LCS-000112",
        d["case_type"],
    )
    assert sorted(shown["categories"]) == sorted(d["categories"])

    # Nothing changed: said on the form, and nothing done.
    same = pages.post(action, data={**shown, "reason": "checking"})
    assert same.status_code == 422
    assert _errors(same.text) == ["Change at least one of the details, or go back to the dispute"]
    # No concern chosen: refused with the words the raise form uses.
    none = pages.post(action, data={**shown, "categories": [], "child_ref": "LCS-000999", "reason": "x"})
    assert none.status_code == 422 and "Select at least one concern" in _errors(none.text)

    done = pages.post(
        action, data={**shown, "child_ref": "LCS-000999", "reason": "typed wrongly"}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    with sessions.begin() as session:
        dispute = session.scalars(select(Dispute)).one()
        assert (dispute.child_ref, dispute.sibling_refs, dispute.version) == ("LCS-000999", ["LCS-000112"], 2)
        entry = session.scalars(select(AuditEntry).where(AuditEntry.trigger == "amend")).one()
        assert json.loads(entry.details) == {
            "before": {"child_ref": "LCS-000111"},
            "after": {"child_ref": "LCS-000999"},
        }
        assert (entry.actor, entry.channel) == (IRO_EMAIL, "web")
    after = pages.get(done.headers["location"])
    assert "Amended the details" in after.text and "typed wrongly" in after.text


def test_an_admin_redacts_a_text_from_its_link_in_the_timeline(
    pages: TestClient,
    sign_in: Callable[[str], str],
    token_for: Callable[[str], dict[str, str]],
    sessions: sessionmaker[Session],
) -> None:
    d = post_dispute(pages.post, token_for(IRO_EMAIL), summary="SECRET-SUMMARY Jane Doe's plan drifts")
    sign_in(IRO_EMAIL)
    assert "/actions/redact" not in pages.get(f"/disputes/{d['id']}").text, "only an admin redacts"
    assert pages.get(f"/disputes/{d['id']}/actions/redact?text=1").status_code == 409
    pages.cookies.clear()

    sign_in(ADMIN_EMAIL)
    page = pages.get(f"/disputes/{d['id']}")
    [link] = re.findall(rf'href="(/disputes/{d["id"]}/actions/redact\?text=\d+)"', page.text)
    action = f"/disputes/{d['id']}/actions/redact"
    form = pages.get(link)
    assert form.status_code == 200 and "SECRET-SUMMARY Jane Doe" in form.text, "it shows what it will hide"
    hidden = form_fields(form.text, action)
    no_reason = pages.post(action, data=hidden)
    assert no_reason.status_code == 422 and "Your reason is required" in _errors(no_reason.text)
    assert "SECRET-SUMMARY Jane Doe" in no_reason.text, "the form still shows which text"

    done = pages.post(action, data={**hidden, "reason": "a name was typed"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    after = pages.get(done.headers["location"])
    assert "SECRET-SUMMARY" not in after.text
    assert "this text was redacted" in after.text and "Redacted a text" in after.text
    with sessions.begin() as session:
        [summary] = session.scalars(select(AuditText).where(AuditText.kind == "summary")).all()
        assert summary.body == "[redacted]"
    # The same text again, another dispute's text, or no text at all: no such text to redact.
    assert pages.get(link).status_code == 404
    assert pages.get(f"/disputes/{d['id']}/actions/redact?text=999999").status_code == 404
    assert pages.get(f"/disputes/{d['id']}/actions/redact").status_code == 404
    tampered = pages.post(action, data={**hidden, "version": "2", "text_id": "x", "reason": "r"})
    assert tampered.status_code == 422 and "The form did not say which text to redact" in tampered.text
