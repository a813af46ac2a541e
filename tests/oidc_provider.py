"""A real OpenID provider for the sign-in tests (`tests/oidc/provider.mjs`, oidc-provider from npm), run
with `node`, and a browser's part in signing in at it: its login and consent forms, filled in over HTTP."""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import httpx2 as httpx
import pytest

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "tests" / "oidc" / "provider.mjs"
# From the process's start: node loading oidc-provider can take many seconds on a loaded 2-core machine.
READY_SECONDS = 60


@contextmanager
def openid_provider(
    port: int,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    log: Path,
    auth_method: str = "client_secret_basic",
) -> Iterator[str]:
    """Start the provider on 127.0.0.1:`port` and yield its issuer; stop it afterwards. Its warnings go to
    `log`, shown if it never gets ready."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("needs Node 20 and `npm ci` (oidc-provider in node_modules)")
    started = time.monotonic()
    with log.open("ab") as errors:
        process = subprocess.Popen(
            [
                node,
                str(SCRIPT),
                *("--port", str(port), "--client-id", client_id, "--redirect-uri", redirect_uri),
                *("--auth-method", auth_method),
            ],
            cwd=ROOT,
            env={**os.environ, "OIDC_CLIENT_SECRET": client_secret},
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        yield _ready(process, started, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def _ready(process: subprocess.Popen[str], started: float, log: Path) -> str:
    # A thread reads the line, so the wait can have a time limit (a pipe's readline has none).
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=max(0.0, started + READY_SECONDS - time.monotonic()))
    except queue.Empty:
        raise AssertionError(
            f"the OpenID provider was not ready within {READY_SECONDS}s: {log.read_text()[-3000:]}"
        ) from None
    if not line.startswith("ready "):
        raise AssertionError(f"the OpenID provider did not start ({line!r}): {log.read_text()[-3000:]}")
    return line.split(" ", 1)[1].strip()


def _form(html: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of a page's one form."""
    action = re.search(r'<form[^>]*action="([^"]+)"', html)
    assert action, f"no form on the provider's page: {html[:2000]}"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return unescape(action.group(1)), {name: unescape(value) for name, value in fields.items()}


def sign_in_at_provider(authorize_url: str, login: str, redirect_uri: str) -> str:
    """What a browser does at the provider: follow the redirects, fill in the login form as `login` (any
    password does) and the consent form, until the provider sends the browser back. Returns that address,
    the service's callback with its code and state."""
    with httpx.Client(timeout=30) as browser:
        url = authorize_url
        for _ in range(20):
            if url.startswith(redirect_uri):
                return url
            page = browser.get(url)
            if page.is_redirect:
                url = urljoin(url, page.headers["location"])
                continue
            assert page.status_code == 200, f"the provider answered {page.status_code}: {page.text[:2000]}"
            action, fields = _form(page.text)
            if fields.get("prompt") == "login":
                fields.update(login=login, password="any")
            answer = browser.post(urljoin(url, action), data=fields)
            assert answer.is_redirect, f"the provider answered {answer.status_code}: {answer.text[:2000]}"
            url = urljoin(url, answer.headers["location"])
        raise AssertionError("the provider never sent the browser back")
