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
