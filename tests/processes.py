"""Real processes for the slow tests: `dispute-service serve` started, killed and restarted, and the ports
and waits they need. Every wait polls with a time limit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

from api.auth import development_token
from states.policy import load_default_policy
from tests.factories import IRO_EMAIL, TEST_SECRET, post_dispute

BIN = Path(sys.executable).with_name("dispute-service")

# The default policy with every timed stage an hour long and no reminders.
SECONDS_POLICY = (
    load_default_policy()
    .text.replace('respond_within = "5wd"', 'respond_within = "PT1H"', 5)
    .replace('reminders = ["-2wd", "0wd"]', "reminders = []")
)


def quick_first_stage(seconds: int) -> str:
    # Only the first stage lasts seconds, so each dispute makes exactly one automatic move in the test.
    return SECONDS_POLICY.replace('respond_within = "PT1H"', f'respond_within = "PT{seconds}S"', 1)


def free_port() -> int:
    # A server's port must be known before it starts, and aiosmtpd's readiness check cannot use port 0
    # (aio-libs/aiosmtpd#276): pick a free port first.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def holds_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    """`check` stays true, polled over `seconds` of real time: for what must not happen, such as a change."""
    deadline = time.monotonic() + seconds
    while True:
        assert check(), f"{what} stopped holding"
        if time.monotonic() >= deadline:
            return
        time.sleep(0.1)


class Server:
    def __init__(
        self, env: dict[str, str], log: Path, *, options: tuple[str, ...] = ("--no-migrate",)
    ) -> None:
        self.port = free_port()
        self.env = env
        self.log = log
        # `serve`'s options after the port: by default the tests' own migrated database, not migrated again.
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [str(BIN), "serve", "--port", str(self.port), *self.options],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, 30, f"the server on port {self.port} to be ready")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def server_env(db_url: str, policy: Path, **extra: str) -> dict[str, str]:
    # `serve` without --demo, as deployed: strict, so it needs real secrets (the mail server and the link
    # base stay on loopback, which needs no TLS). The same as the `settings` fixture, so tokens match.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
    env.update(
        DISPUTES_DATABASE_URL=db_url,
        DISPUTES_POLICY=str(policy),
        DISPUTES_JWT_SECRET=TEST_SECRET,
        DISPUTES_LINK_SECRET=TEST_SECRET,
        DISPUTES_AUDIT_KEY=TEST_SECRET,
        DISPUTES_LOG_FORMAT="json",
        **extra,
    )
    return env


def raise_over_http(server: Server, settings: Any, count: int) -> None:
    """Raise `count` disputes through the real server's API, as the IRO."""
    token = development_token(settings, IRO_EMAIL, datetime.now(UTC))
    for i in range(count):
        post_dispute(
            httpx.post, {"Authorization": f"Bearer {token}"}, base_url=server.url, child_ref=f"LCS-{i}"
        )
