"""A hostile or broken server: nothing it answers is reported ok unless it happened, nothing it
sends crashes the run, holds it past its deadline, or fills its memory.

Every case runs `cio-flows run` as a real process against a real local server (hostile_server.py)
and checks the exit status, the output (no traceback, no key) and what the server received.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SECRETS, env_for
from hostile_server import HostileServer, Reply, json_reply, serve

pytestmark = pytest.mark.slow  # each test runs the CLI as a real process

EXIT_FAILED, EXIT_UNAVAILABLE = 1, 4
HANG_GUARD = 120  # seconds: only a run that hangs comes near it

SEND_EMAIL = """\
version: 1
name: hostile
steps:
  - send_email: {transactional_message_id: 7, to: a@example.com, identifiers: {id: a}}
"""

IDENTIFY = """\
version: 1
name: hostile
steps:
  - identify: {userId: u1, traits: {plan: pro}}
"""

ROWS = """\
version: 1
name: hostile
for_each: {file: users.csv, key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {plan: pro}}
"""


@pytest.fixture
def server() -> Iterator[HostileServer]:
    yield from serve(HostileServer())


@pytest.fixture
def elsewhere() -> Iterator[HostileServer]:
    """A second host, where a redirect points."""
    yield from serve(HostileServer())


@pytest.fixture
def flow_dir(tmp_path: Path) -> Path:
    lines = ["id"] + [f"r{i}" for i in range(3)]
    (tmp_path / "users.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def run(flow_dir: Path, flow: str, server: HostileServer, *args: str):
    path = flow_dir / "flow.yaml"
    path.write_text(flow)
    env = {**os.environ, **env_for(server.url)}
    result = subprocess.run(
        [sys.executable, "-m", "cio_flows.cli", "run", str(path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    for secret in SECRETS.values():
        if len(secret) > 8:
            assert secret not in output
    return result.returncode, output


def outcomes() -> list[tuple[str, str]]:
    """(status, error) of every step in the journal."""
    with contextlib.closing(sqlite3.connect(os.environ["CIO_FLOWS_JOURNAL"])) as db:
        return db.execute("SELECT status, error FROM outcomes ORDER BY row_key").fetchall()


# --- 3: redirects --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_naming_where_it_pointed(flow_dir, server, elsewhere, status):
    elsewhere.answer = lambda seen: json_reply({"delivery_id": "fake", "queued_at": 1})
    server.answer = lambda seen: Reply(status, b"", {"Location": f"{elsewhere.url}/steal"})

    code, output = run(flow_dir, SEND_EMAIL, server)

    assert code == EXIT_UNAVAILABLE  # a send the server may have seen: unknown, never resent
    assert f"HTTP {status} redirect to {elsewhere.url}/steal" in output
    assert "fake" not in output
    assert elsewhere.seen == []  # nothing went to the other host
    assert len(server.seen) == 1


def test_a_redirect_loop_is_one_request(flow_dir, server):
    server.answer = lambda seen: Reply(302, b"", {"Location": "/v1/identify"})
    code, _ = run(flow_dir, IDENTIFY, server)
    assert code == EXIT_FAILED
    assert len(server.seen) == 1
    assert [status for status, _ in outcomes()] == ["failed"]


# --- 4: a success that is not JSON ---------------------------------------------------------

LOGIN_PAGE = b"<!doctype html><html><body><form>Sign in to the proxy</form></body></html>"


def test_a_200_html_page_is_not_a_successful_send(flow_dir, server):
    server.answer = lambda seen: Reply(200, LOGIN_PAGE, {"Content-Type": "text/html"})
    code, output = run(flow_dir, SEND_EMAIL, server)
    assert code == EXIT_UNAVAILABLE
    assert "HTTP 200 answer is not JSON (text/html)" in output
    assert [status for status, _ in outcomes()] == ["unknown"]


def test_a_200_html_page_fails_a_repeatable_write(flow_dir, server):
    server.answer = lambda seen: Reply(200, LOGIN_PAGE, {"Content-Type": "text/html"})
    code, _ = run(flow_dir, IDENTIFY, server)
    assert code == EXIT_FAILED
    assert [status for status, _ in outcomes()] == ["failed"]


# --- 2: a 207 whose errors name no item -----------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"errors": [{"batch_index": "1", "reason": "invalid"}]},
        {"errors": [{"batch_index": 7, "reason": "invalid"}]},
        {"errors": [{"batch_index": -1, "reason": "invalid"}]},
        {"errors": [{"batch_index": True, "reason": "invalid"}]},
        {"errors": "bad"},
        {"errors": 5},
        {"errors": []},
        {},
        5,
        "str",
    ],
)
def test_a_207_whose_errors_name_no_item_fails_every_row(flow_dir, server, answer):
    server.answer = lambda seen: json_reply(answer, status=207)
    code, _ = run(flow_dir, ROWS, server)
    assert code == EXIT_FAILED
    assert len(server.seen) == 1  # one batch
    assert [status for status, _ in outcomes()] == ["failed"] * 3


def test_a_207_html_body_fails_every_row(flow_dir, server):
    server.answer = lambda seen: Reply(207, LOGIN_PAGE, {"Content-Type": "text/html"})
    code, _ = run(flow_dir, ROWS, server)
    assert code == EXIT_FAILED
    assert [status for status, _ in outcomes()] == ["failed"] * 3


def test_a_207_naming_one_item_fails_that_row_only(flow_dir, server):
    errors = [{"batch_index": 1, "reason": "invalid", "field": "traits", "message": "too big"}]
    server.answer = lambda seen: json_reply({"errors": errors}, status=207)
    code, _ = run(flow_dir, ROWS, server)
    assert code == EXIT_FAILED
    assert [status for status, _ in outcomes()] == ["ok", "failed", "ok"]
