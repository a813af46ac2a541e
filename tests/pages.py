"""Reading the pages in tests: the CSRF token and hidden fields of a page's forms."""

from __future__ import annotations

import re
from typing import Any

# The session secret of every test app that serves pages.
SESSION_SECRET = "session-secret-0123456789abcdef0123"


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def form_fields(html: str, action: str) -> dict[str, Any]:
    """The hidden fields of the form posting to `action`."""
    start = html.index(f'action="{action}"')
    end = html.index("</form>", start)
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', html[start:end]))


def post_link(client: Any, token: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """Use an email link as a person does: open its page (which gives the browser the form's CSRF token
    and its cookie), then send the form. A page that is refused has no form, and the post goes without."""
    return client.post(f"/links/{token}", data={**open_link(client, token), **(data or {})}, **kwargs)


def open_link(client: Any, token: str) -> dict[str, str]:
    """Open a link's page: the form's CSRF token (its cookie is now the client's), or nothing when the
    page is a refusal and has no form."""
    page = client.get(f"/links/{token}")
    return {"csrf_token": csrf_of(page.text)} if page.status_code == 200 else {}
