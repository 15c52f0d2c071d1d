"""A local stand-in of Clerk's Backend API (users list, offset pagination, Bearer key) and
webhook deliveries signed the Svix way, for the flows in flows/clerk/."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support import cli

SECRET_KEY = "sk_test_clerk_standin_9f8e7d6c5b4a"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"clerk-standin-signing-key-0123456789").decode()


def clerk_user(number: int) -> dict[str, Any]:
    """A user object shaped like Clerk's (ids, email addresses, times in milliseconds)."""
    user_id = f"user_{number:05d}"
    email_id = f"idn_{number:05d}"
    created = 1_700_000_000_000 + number * 60_000
    return {
        "id": user_id,
        "object": "user",
        "first_name": f"First{number}",
        "last_name": f"Last{number}",
        "primary_email_address_id": email_id,
        "email_addresses": [
            {"id": f"idn_other_{number:05d}", "email_address": f"old{number}@example.org"},
            {"id": email_id, "email_address": f"user{number}@example.com"},
        ],
        "created_at": created,
        "updated_at": created + 1000,
        "public_metadata": {},
    }


@dataclass
class ClerkStandIn:
    users: list[dict[str, Any]]
    page_reads: list[str] = field(default_factory=list)
    url: str = ""


@contextmanager
def clerk_api(count: int) -> Iterator[ClerkStandIn]:
    state = ClerkStandIn([clerk_user(n) for n in range(1, count + 1)])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if self.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
                return self._answer(401, {"errors": [{"code": "authentication_invalid"}]})
            if parts.path != "/v1/users":
                return self._answer(404, {"errors": [{"code": "resource_not_found"}]})
            query = parse_qs(parts.query)
            limit = int(query.get("limit", ["10"])[0])
            offset = int(query.get("offset", ["0"])[0])
            state.page_reads.append(self.path)
            self._answer(200, state.users[offset : offset + limit])

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def svix_headers(
    body: bytes, msg_id: str, timestamp: int, secret: str = WEBHOOK_SECRET
) -> dict[str, str]:
    """The headers Svix sends with a delivery: id, timestamp and `v1,<base64 HMAC-SHA256>` of
    `id.timestamp.body` keyed with the secret's base64 part."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(timestamp),
        "svix-signature": f"v1,{signature}",
        "content-type": "application/json",
    }


@contextmanager
def serving(flow: Path, env: dict[str, str]) -> Iterator[str]:
    """The address of `cio-flows serve FLOW --verify svix` (this module's signing secret) on a
    free port; on leaving, the server is stopped, its log printed (shown when a test fails)
    and checked for tracebacks."""
    process = subprocess.Popen(
        cli(
            "serve",
            str(flow),
            "--port",
            "0",
            "--verify",
            "svix",
            "--secret-env",
            "CLERK_WEBHOOK_SECRET",
        ),
        env={**env, "CLERK_WEBHOOK_SECRET": WEBHOOK_SECRET},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "serving" in line, line
        yield line.split(" at ", 1)[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=30)
        log = process.stderr.read() if process.stderr else ""
        print(log)
        assert "Traceback" not in log
