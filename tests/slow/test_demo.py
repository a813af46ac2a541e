"""`dispute-service serve --demo` as a person trying the service runs it: a real process on a fresh SQLite
file, with nothing set but the database, that migrates, loads the demo and answers a demo token."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.processes import BIN, Server

pytestmark = pytest.mark.slow


def test_serve_demo_lists_the_demo_disputes_to_a_demo_token(tmp_path: Path, servers: list[Server]) -> None:
    # Only the database is set: the demo must run on its development defaults, as the README says.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
    env["DISPUTES_DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.db'}"
    server = Server(env, tmp_path / "serve.log", options=("--demo",))
    servers.append(server)
    server.start()  # returns once /readyz answers 200
    assert "demo data loaded" in server.log.read_text()

    printed = subprocess.run(
        [str(BIN), "token", "iro@example.gov.uk"], env=env, capture_output=True, text=True, check=True
    )
    headers = {"Authorization": f"Bearer {printed.stdout.split()[-1]}"}
    response = httpx.get(f"{server.url}/api/v1/disputes", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 6
    listed = {d["child_ref"]: (d["stage"], d["state"], d["iro"]) for d in body["items"]}
    assert listed == {
        "LCS-100201": ("quality_assurance", "awaiting_response", "iro@example.gov.uk"),
        "LCS-100342": ("quality_assurance", "awaiting_response", "iro@example.gov.uk"),
        "LCS-100587": ("head_of_corporate_parenting", "awaiting_response", "iro@example.gov.uk"),
        "LCS-100733": ("quality_assurance", "responded", "iro@example.gov.uk"),
        "LCS-100815": ("quality_assurance", "resolved", "iro@example.gov.uk"),
        "LCS-100940": ("designated_nurse", "awaiting_response", "iro@example.gov.uk"),
    }
    # A token the demo did not sign is refused: the list above was the token's doing.
    refused = httpx.get(
        f"{server.url}/api/v1/disputes", headers={"Authorization": "Bearer x.y.z"}, timeout=10
    )
    assert refused.status_code == 401

    server.stop()
    # A clean stop: uvicorn finishes its shutdown, then exits by the SIGTERM it caught (-15), as it does.
    assert server.process is not None and server.process.returncode in (0, -15)
    assert "Application shutdown complete" in server.log.read_text()
