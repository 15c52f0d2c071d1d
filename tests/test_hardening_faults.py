"""Network faults against real local servers: what was sent is known, and nothing is sent twice.

A step whose request carries an idempotency id (messageId, event id) is never UNKNOWN: a lost
answer makes it failed and resume sends it again with the same id. A send without one stays
UNKNOWN. A request whose connection never opened (DNS, refused, TLS) is failed and names the
host and the cause. Ctrl-C during a long backoff stops at once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import env_for
from support import cli_ctrl_c

from cio_flows.cli import main
from cio_flows.wire.retry import RetryPolicy

CLOSE = None  # an answer that closes the connection instead of answering
HALF = "half"  # an answer cut off after the headers and part of the body

Answer = tuple[int, dict[str, str], Any] | str | None


@dataclass
class FaultServer:
    url: str
    port: int
    bodies: list[tuple[str, Any]] = field(default_factory=list)  # (path, JSON body) received
    answer: Callable[[str], Answer] = lambda path: (200, {}, {})


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    state = FaultServer(url="", port=0)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with lock:
                state.bodies.append((self.path, json.loads(raw) if raw else None))
            answer = state.answer(self.path)
            if answer is CLOSE or answer == HALF:
                self._cut(answer)
                return
            status, headers, body = answer
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _cut(self, answer: Answer) -> None:
            """The server read the request (and may have acted on it), then the line dropped."""
            if answer == HALF:
                self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n{"ok":')
                self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        do_GET = do_POST = do_PUT = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    state.url = f"http://127.0.0.1:{state.port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def quick_retries(monkeypatch):
    """Backoff of a millisecond: the retries still happen, the test does not wait for them."""
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, attempt, rng=None: 0.001)


def run_cli(*args: str, env: dict[str, str]):
    return CliRunner().invoke(main, ["run", *args], env=env, catch_exceptions=False)


def run_id_of(output: str) -> str:
    return re.search(r"run id: (\S+)", output).group(1)


def journal_outcomes(run_id: str) -> list[tuple[str, str, int, str | None]]:
    """(step_key, status, attempts, error) of every step of run_id, from the journal on disk."""
    with sqlite3.connect(os.environ["CIO_FLOWS_JOURNAL"]) as db:
        return db.execute(
            "SELECT step_key, status, attempts, error FROM outcomes WHERE run_id = ?", (run_id,)
        ).fetchall()


def free_port() -> int:
    """A port nothing listens on: bound once to get a number, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


IDENTIFY_ROWS = """\
version: 1
name: faults
for_each: {file: users.csv, key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}
"""

SEND_EMAIL = """\
version: 1
name: send
steps:
  - send_email:
      transactional_message_id: 1
      to: jane@example.com
      identifiers: {id: jane}
"""


def identify_flow(write_flow) -> Path:
    flow = write_flow(IDENTIFY_ROWS, "faults.yaml")
    (flow.parent / "users.csv").write_text("id,email\nu1,u1@example.com\nu2,u2@example.com\n")
    return flow


def message_ids(server: FaultServer) -> dict[str, set[str]]:
    """userId -> every messageId received for it, single calls and batch items alike."""
    seen: dict[str, set[str]] = {}
    for _, body in server.bodies:
        for item in (body or {}).get("batch", [body]):
            seen.setdefault(item["userId"], set()).add(item["messageId"])
    return seen


@pytest.mark.parametrize("batch", ["--no-batch", "--batch"])
@pytest.mark.parametrize("cut", [CLOSE, HALF], ids=["closed", "half-answer"])
def test_identify_whose_answer_is_lost_is_failed_and_resumed_once(
    fault_server, write_flow, quick_retries, batch, cut
):
    flow = identify_flow(write_flow)
    env = env_for(fault_server.url)
    fault_server.answer = lambda path: cut
    first = run_cli(str(flow), batch, env=env)
    run_id = run_id_of(first.output)
    assert first.exit_code == 4, first.output  # no answer after retries
    assert {status for _, status, _, _ in journal_outcomes(run_id)} == {"failed"}
    assert "unknown" not in first.output.lower()
    assert "closed mid-answer" in first.output and f"127.0.0.1:{fault_server.port}" in first.output
    tries = len(fault_server.bodies)
    assert tries > 1  # retried within the run too: the messageId makes a resend harmless

    fault_server.answer = lambda path: (200, {}, {})
    resumed = run_cli(str(flow), batch, "--resume", run_id, env=env)
    assert resumed.exit_code == 0, resumed.output
    assert len(fault_server.bodies) > tries  # resume sent them again
    ids = message_ids(fault_server)
    assert set(ids) == {"u1", "u2"}
    assert all(len(v) == 1 for v in ids.values()), (
        "a resend changed the messageId: not deduplicated"
    )
    assert {status for _, status, _, _ in journal_outcomes(run_id)} == {"ok"}


def test_send_email_whose_answer_is_lost_stays_unknown(fault_server, write_flow, quick_retries):
    flow = write_flow(SEND_EMAIL)
    env = env_for(fault_server.url)
    fault_server.answer = lambda path: CLOSE
    first = run_cli(str(flow), env=env)
    run_id = run_id_of(first.output)
    assert first.exit_code == 4, first.output  # a send whose outcome is unknown
    assert len(fault_server.bodies) == 1  # no id to deduplicate on: never resent
    [(_, status, attempts, error)] = journal_outcomes(run_id)
    assert (status, attempts) == ("unknown", 1)
    assert f"connection to 127.0.0.1:{fault_server.port} closed mid-answer" in error

    fault_server.answer = lambda path: (200, {}, {"delivery_id": "d1"})
    run_cli(str(flow), "--resume", run_id, env=env)
    assert len(fault_server.bodies) == 1  # resume does not resend it either


def test_tls_to_a_plain_http_port_is_known_unsent(fault_server, write_flow, quick_retries):
    flow = write_flow(SEND_EMAIL)
    tls_url = f"https://127.0.0.1:{fault_server.port}"
    first = run_cli(str(flow), env=env_for(fault_server.url, CUSTOMERIO_APP_URL=tls_url))
    run_id = run_id_of(first.output)
    [(_, status, attempts, error)] = journal_outcomes(run_id)
    assert status == "failed"  # the handshake failed: not a byte of the request left
    assert f"TLS handshake with 127.0.0.1:{fault_server.port} failed" in error
    assert f"after {attempts} attempt(s)" in error and attempts > 1
    assert fault_server.bodies == []

    resumed = run_cli(str(flow), "--resume", run_id, env=env_for(fault_server.url))
    assert resumed.exit_code == 0, resumed.output
    assert [path for path, _ in fault_server.bodies] == ["/v1/send/email"]  # sent once, now


def test_unresolvable_host_names_the_host_and_dns(write_flow, quick_retries):
    flow = write_flow(SEND_EMAIL)
    env = env_for("http://127.0.0.1:9", CUSTOMERIO_APP_URL="http://cio-flows-test.invalid:8080")
    started = time.monotonic()
    result = run_cli(str(flow), env=env)
    assert time.monotonic() - started < 10  # hang guard: not one DNS timeout per retry
    [(_, status, attempts, error)] = journal_outcomes(run_id_of(result.output))
    assert status == "failed"
    assert "DNS lookup failed for cio-flows-test.invalid:8080" in error
    assert f"after {attempts} attempt(s)" in error
    assert "DNS lookup failed for cio-flows-test.invalid:8080" in result.output


def test_connection_refused_names_host_and_counts_every_attempt(write_flow, quick_retries):
    flow = write_flow(SEND_EMAIL)
    port = free_port()
    result = run_cli(str(flow), env=env_for(f"http://127.0.0.1:{port}"))
    assert result.exit_code == 4  # the API stayed unreachable
    [(_, status, attempts, error)] = journal_outcomes(run_id_of(result.output))
    assert status == "failed"  # refused: never sent, so resume may send it
    assert f"connection refused by 127.0.0.1:{port} after 6 attempt(s)" in error
    assert attempts == 6  # the journal counts the attempts the message reports


@pytest.mark.slow
def test_ctrl_c_during_a_long_backoff_stops_promptly(fault_server, write_flow):
    flow = write_flow(
        "version: 1\nname: slow\nsteps:\n  - identify: {userId: u1, traits: {a: 1}}\n"
    )
    fault_server.answer = lambda path: (503, {"Retry-After": "20"}, {"errors": []})
    env = {**os.environ, **env_for(fault_server.url)}  # the journal under tmp_path (conftest)
    child = subprocess.Popen(
        cli_ctrl_c("run", str(flow)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not fault_server.bodies and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fault_server.bodies, "the run never sent its request"
        time.sleep(0.5)  # now in the 20 s wait before the retry
        interrupted = time.monotonic()
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
        elapsed = time.monotonic() - interrupted
    finally:
        if child.poll() is None:
            child.kill()
    output = child.stdout.read() + child.stderr.read()
    assert elapsed < 10, output  # hang guard: Ctrl-C does not wait out the backoff
    assert "Traceback" not in output
    assert len(fault_server.bodies) == 1  # no retry after Ctrl-C
    [(_, status, attempts, _)] = journal_outcomes(run_id_of(output))
    assert (status, attempts) == ("failed", 1)  # resume will send it again
