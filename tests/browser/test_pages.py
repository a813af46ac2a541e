"""The pages as a person meets them in Chromium: signing in and out through the pages, every page's
heading, axe-core's WCAG 2.2 A and AA rules, and reflow at 320 CSS pixels; and proof that those checks
fail on a page that breaks them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from api.app import Mode, create_app
from dispute_service.demo import DEMO_PEOPLE
from tests.browser import support
from tests.browser.support import (
    BROKEN_PATH,
    IRO,
    TEAM_MANAGER,
    Shown,
    assert_accessible,
    assert_reflows,
    check_page,
    go,
    sign_in_as,
    sign_out,
)

# The demo's open disputes (LCS-100815 is resolved, so no dashboard lists it).
DEMO_CHILDREN = {"LCS-100201", "LCS-100342", "LCS-100587", "LCS-100733", "LCS-100940"}


@pytest.mark.parametrize(
    ("person", "shown"), support.every_page(), ids=[shown.name for _, shown in support.every_page()]
)
def test_every_page_has_its_heading_passes_axe_and_reflows_at_320px(
    page: Page, live_server: support.LiveServer, person: str | None, shown: Shown
) -> None:
    if person is not None:
        sign_in_as(page, person)
    go(page, support.path_for(shown, live_server), shown.status)
    expect(page.get_by_role("heading", level=1)).to_have_text(shown.heading)
    check_page(page)


def test_the_sign_in_page_has_a_button_for_each_demo_person(page: Page) -> None:
    go(page, "/sign-in")
    buttons = page.get_by_role("button", name=re.compile("^Sign in as "))
    expect(buttons).to_have_count(len(DEMO_PEOPLE))
    for (name, email, _), button in zip(DEMO_PEOPLE, buttons.all(), strict=True):
        # The email is read out but not shown twice: it is in a visually hidden span, not markup as text.
        expect(button).to_have_accessible_name(f"Sign in as {name} ({email})")
        assert "<" not in button.inner_text()


def test_the_iro_signs_in_by_name_and_sees_the_disputes_they_raised(page: Page) -> None:
    assert sign_in_as(page, "Ima Reviewer") == IRO
    assert page.url.endswith("/")
    expect(page.get_by_role("contentinfo")).to_contain_text(f"Signed in as {IRO}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your disputes")
    table = page.get_by_role("table", name="Open disputes you raised, soonest due first")
    children = set(table.locator("tbody tr td:nth-child(2)").all_inner_texts())
    assert children == DEMO_CHILDREN
    menu = page.get_by_role("navigation", name="Menu")
    expect(menu.get_by_role("link", name="Raise a dispute")).to_be_visible()


def test_the_team_manager_signs_in_by_email_and_sees_what_waits_on_them(page: Page) -> None:
    assert sign_in_as(page, TEAM_MANAGER) == TEAM_MANAGER
    expect(page.get_by_role("contentinfo")).to_contain_text(f"Signed in as {TEAM_MANAGER}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your disputes")
    table = page.get_by_role("table", name="Disputes waiting on you, soonest due first")
    children = set(table.locator("tbody tr td:nth-child(2)").all_inner_texts())
    assert children and children <= DEMO_CHILDREN
    # A team manager raises nothing, so their menu offers no way to.
    expect(page.get_by_role("link", name="Raise a dispute")).to_have_count(0)


def test_a_page_needing_sign_in_sends_a_signed_out_person_to_sign_in(page: Page) -> None:
    go(page, "/")
    assert page.url.endswith("/sign-in")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def test_signing_in_returns_to_the_page_asked_for(page: Page) -> None:
    sign_in_as(page, IRO, next_path="/accessibility?from=sign-in")
    assert page.url.endswith("/accessibility?from=sign-in")
    expect(page.get_by_role("heading", level=1)).to_have_text("Accessibility statement")


@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "signed-in"])
def test_the_accessibility_statement_is_linked_from_the_footer(page: Page, signed_in: bool) -> None:
    if signed_in:
        sign_in_as(page, IRO)
    else:
        go(page, "/sign-in")
    page.get_by_role("contentinfo").get_by_role("link", name="Accessibility statement").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Accessibility statement")
    assert page.url.endswith("/accessibility")


@pytest.mark.parametrize("width", [1000, 320])
def test_signing_out_ends_the_session(page: Page, width: int) -> None:
    # At 320 px the menu, and its sign-out button, are behind the menu toggle.
    page.set_viewport_size({"width": width, "height": 800})
    sign_in_as(page, IRO)
    sign_out(page)
    check_page(page)
    expect(page.get_by_text("Signed in as")).to_have_count(0)
    go(page, "/")
    assert page.url.endswith("/sign-in"), "the session outlived sign-out"


# The checks can fail: a page that breaks them is caught, with a readable account of what is wrong.


def test_assert_accessible_catches_an_input_without_a_label(page: Page) -> None:
    go(page, BROKEN_PATH)
    ids = [v["id"] for v in support.axe_violations(page)]
    assert ids == ["label"]
    with pytest.raises(AssertionError) as caught:
        assert_accessible(page)
    message = str(caught.value)
    assert "1 accessibility violation(s)" in message
    assert "- label (critical): Form elements must have labels" in message
    assert 'at input: <input class="govuk-input" type="text" name="nameless">' in message


def test_the_broken_page_is_only_on_the_test_app(live_server: support.LiveServer) -> None:
    settings = support.live_settings(Path("/nonexistent"), 1, 2, scheduler=False)
    real = create_app(settings, mode=Mode.DEMO)
    assert not [r for r in real.routes if getattr(r, "path", "").startswith("/test-only")]
    assert [r for r in live_server.app.routes if getattr(r, "path", "") == BROKEN_PATH]


# Each breaks reflow on the IRO's page, which passes as it is (its wide table scrolls in its region). Styles
# are set through the DOM: the content security policy refuses a style attribute in markup.
_WIDE = "const wide = document.createElement('div'); wide.textContent = 'wide'; wide.style.width = '600px'; "
BREAK_REFLOW = {
    "a wide element": _WIDE + "document.querySelector('main').append(wide)",
    "a wide element the page hides the overflow of": _WIDE
    + "document.body.style.overflowX = 'hidden'; document.querySelector('main').append(wide)",
    "an unbreakable word": "document.querySelector('h1').textContent = 'x'.repeat(80)",
    "a box scrolling sideways outside a table region": _WIDE
    + "const box = document.createElement('div'); box.style.overflowX = 'auto'; box.append(wide); "
    "document.querySelector('main').append(box)",
    "the table's region without its tabindex": "document.querySelector('.app-table-scroll')"
    ".removeAttribute('tabindex')",
    "the table's region without its label": "document.querySelector('.app-table-scroll')"
    ".setAttribute('aria-labelledby', 'nothing-has-this-id')",
}


@pytest.mark.parametrize("breakage", list(BREAK_REFLOW))
def test_assert_reflows_catches_what_scrolls_sideways(page: Page, breakage: str) -> None:
    sign_in_as(page, IRO)
    assert_reflows(page)
    page.evaluate(BREAK_REFLOW[breakage])
    with pytest.raises(AssertionError, match="does not reflow at 320 px"):
        assert_reflows(page)


def test_the_pages_of_reading_by_link_that_only_a_form_reaches_pass_axe_and_reflow(
    page: Page, live_server: support.LiveServer
) -> None:
    # Reached by a button, not an address, so PAGES cannot list them: asking for a code, a wrong code, and
    # the answer to /links/renew.
    go(page, support.path_for(Shown("/links/{link:LCS-100201:respond}", "", ""), live_server))
    page.get_by_role("button", name="Send me a code").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter the code")
    check_page(page)
    page.get_by_label("Code").fill("12")
    page.get_by_role("button", name="Read the dispute").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter the code")
    expect(page.get_by_text("There is a problem")).to_be_visible()
    check_page(page)
    go(page, "/links/renew")
    page.get_by_label("Email address").fill("nobody@example.org")
    page.get_by_role("button", name="Send a fresh link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    check_page(page)
