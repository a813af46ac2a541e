"""Helpers for the tests that drive real `dispute-service serve` processes. They poll with a time limit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from api.auth import development_token
from tests.conftest import TEST_SECRET

BIN = Path(sys.executable).with_name("dispute-service")


def free_port() -> int:
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


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [str(BIN), "serve", "--port", str(self.port), "--no-migrate"],
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
    env.update(
        DISPUTES_DATABASE_URL=db_url,
        DISPUTES_POLICY=str(policy),
        DISPUTES_JWT_SECRET=TEST_SECRET,
        DISPUTES_LINK_SECRET=TEST_SECRET,
        DISPUTES_LOG_FORMAT="json",
        **extra,
    )
    return env


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def raise_over_http(server: Server, settings: Any, count: int) -> None:
    """Raise `count` disputes through the real server's API, as the IRO."""
    token = development_token(settings, "iro@example.gov.uk", datetime.now(UTC))
    body = {
        "case_type": "looked_after",
        "categories": ["contact"],
        "summary": "s",
        "team_manager_email": "tm@example.gov.uk",
    }
    for i in range(count):
        response = httpx.post(
            f"{server.url}/api/v1/disputes",
            json={**body, "child_ref": f"LCS-{i}"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.text
