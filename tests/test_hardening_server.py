"""A hostile or broken server: nothing it answers is reported ok unless it happened, nothing it
sends crashes the run, holds it past its deadline, or fills its memory.

Every case runs `cio-flows run` as a real process against a real local server (hostile_server.py)
and checks the exit status, the output (no traceback, no key) and what the server received.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SECRETS, env_for
from hostile_server import HostileServer, Reply, Seen, json_reply, serve
from support import cli_measured, peak_mb

from cio_flows.errors import StepFailure
from cio_flows.wire import kinds
from cio_flows.wire.kinds.answers import DEFAULT_MAX_PAGES
from cio_flows.wire.retry import LONGEST_RETRY_AFTER, parse_retry_after
from cio_flows.wire.types import Request, Response, StepKeys

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


# --- 9: Retry-After ------------------------------------------------------------------------

IDENTIFY_THEN_FINALLY = """\
version: 1
name: hostile
steps:
  - identify: {userId: u1, traits: {plan: pro}}
finally:
  - track: {userId: u1, event: cleaned_up}
"""


@pytest.mark.parametrize("retry_after", ["inf", "1e400", "Fri, 31 Dec 9999 23:59:59 GMT", "100000"])
def test_a_retry_after_too_long_fails_the_step_and_finally_still_runs(
    flow_dir, server, retry_after
):
    def answer(seen: Seen) -> Reply:
        if seen.path == "/v1/identify":
            return json_reply(
                {"errors": [{"message": "slow down"}]}, 429, **{"Retry-After": retry_after}
            )
        return json_reply({})

    server.answer = answer
    code, output = run(flow_dir, IDENTIFY_THEN_FINALLY, server)
    assert code == EXIT_UNAVAILABLE
    assert "Retry-After" in output
    assert server.paths() == ["/v1/identify", "/v1/track"]  # finally ran, nothing paused


def test_retry_after_is_read_as_a_finite_number_of_seconds():
    assert parse_retry_after("inf") == parse_retry_after("1e400") == LONGEST_RETRY_AFTER
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT") == LONGEST_RETRY_AFTER
    assert parse_retry_after("-inf") == 0.0
    assert parse_retry_after("nan") is None  # unreadable: as if absent
    assert parse_retry_after("Fri, 31 Dec 99999 23:59:59 GMT") is None


# --- 10: a deadline for the whole answer --------------------------------------------------


@pytest.mark.parametrize("flow", [IDENTIFY, SEND_EMAIL], ids=["identify", "send_email"])
def test_an_answer_that_drips_fails_at_the_deadline(flow_dir, server, flow):
    # One byte every half second: each read is quick, so no read timeout ever trips.
    server.answer = lambda seen: Reply(200, b'{"delivery_id": "d"}' + b" " * 10_000, drip_every=0.5)
    code, output = run(flow_dir, flow, server, "--timeout", "2")
    assert code == EXIT_UNAVAILABLE
    assert "did not arrive whole within 2 s (--timeout)" in output
    assert len(server.seen) == 1  # not retried: a dripping server will not mend


def test_timeout_must_be_a_positive_number(flow_dir, server):
    for bad in ("0", "-1", "nan", "inf", "soon"):
        code, output = run(flow_dir, IDENTIFY, server, "--timeout", bad)
        assert code == 2, output
        assert "--timeout" in output
    assert server.seen == []


# --- 11: answers of unbounded size ---------------------------------------------------------


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """256 MB of zeros in about 250 KB."""
    zeros = bytes(1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(zeros) for _ in range(256)]
    return b"".join(parts) + compressor.flush()


def run_measured(flow_dir: Path, flow: str, server: HostileServer) -> tuple[int, str, int]:
    """Exit status, output and peak memory (bytes) of a real `cio-flows run`."""
    path = flow_dir / "flow.yaml"
    path.write_text(flow)
    out, peak_file = flow_dir / "out.txt", flow_dir / "peak.txt"
    with out.open("w") as sink:
        done = subprocess.run(
            cli_measured("run", str(path)),
            env={**os.environ, **env_for(server.url), "CIO_TEST_PEAK_FILE": str(peak_file)},
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    output = out.read_text()
    assert "Traceback" not in output and "MemoryError" not in output, output
    return done.returncode, output, int(peak_mb(peak_file) * 2**20)


def test_a_gzip_bomb_fails_the_step_in_little_memory(flow_dir, server, gzip_bomb):
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    server.answer = lambda seen: Reply(200, gzip_bomb, headers)
    code, output, peak = run_measured(flow_dir, IDENTIFY, server)
    assert code == EXIT_UNAVAILABLE
    assert "the answer is larger than 16 MB" in output
    assert peak < 200 * 1024 * 1024, f"peak memory {peak / 2**20:.0f} MB"


def test_an_endless_chunked_answer_fails_the_step_in_little_memory(flow_dir, server):
    server.answer = lambda seen: Reply(200, b"[" * 65536, endless=True)
    code, output, peak = run_measured(flow_dir, IDENTIFY, server)
    assert code == EXIT_UNAVAILABLE
    assert "the answer is larger than 16 MB" in output
    assert peak < 200 * 1024 * 1024, f"peak memory {peak / 2**20:.0f} MB"


# --- 12: pagination that never ends --------------------------------------------------------

SEARCH = """\
version: 1
name: hostile
steps:
  - search:
      filter: {attribute: {field: plan, operator: eq, value: pro}}
      {extra}
"""


def endless_pages(seen: Seen) -> Reply:
    """Every page has an item and a cursor the client has not seen yet."""
    cursor = f"c{next(_CURSORS)}"
    return json_reply({"identifiers": [{"id": "x"}], "ids": ["x"], "next": cursor})


_CURSORS = itertools.count()


def test_pagination_that_never_ends_stops_at_max_pages(flow_dir, server):
    server.answer = endless_pages
    code, output = run(flow_dir, SEARCH.replace("{extra}", "max_pages: 5"), server)
    assert code == EXIT_FAILED
    assert "the list did not end after 5 pages" in output
    assert len(server.seen) == 5


@pytest.mark.parametrize("kind", ["search", "segment_members", "list_messages"])
def test_pagination_stops_at_1000_pages_by_default(kind):
    # In memory: 1000 real requests would take 100 s at the App API's 10 requests/s.
    sent: list[Request] = []

    def send(request: Request) -> Response:
        sent.append(request)
        page = {"identifiers": [{"id": "x"}], "ids": ["x"], "messages": [{"id": 1}]}
        return Response(200, {**page, "next": f"c{len(sent)}"})

    payload = {"filter": {}, "segment_id": 1}
    with pytest.raises(StepFailure, match="did not end after 1000 pages"):
        kinds.get(kind).execute(payload, StepKeys(str, str), "pipelines", send)
    assert len(sent) == DEFAULT_MAX_PAGES == 1000


# --- 16: answers of unexpected shape -------------------------------------------------------

GET_PERSON = """\
version: 1
name: hostile
steps:
  - get_person: {id: u1}
"""


@pytest.mark.parametrize("answer", [5, "str", [1, 2], True])
def test_a_read_answered_with_an_odd_shape_fails_cleanly(flow_dir, server, answer):
    server.answer = lambda seen: json_reply(answer)
    code, output = run(flow_dir, GET_PERSON, server)
    assert code == EXIT_FAILED
    assert "is not a JSON object" in output


@pytest.mark.parametrize("field", ["identifiers", "ids"])
def test_a_search_answered_with_an_odd_list_fails_cleanly(flow_dir, server, field):
    server.answer = lambda seen: json_reply({field: 7, "next": ""})
    code, output = run(flow_dir, SEARCH.replace("{extra}", ""), server)
    assert code == EXIT_FAILED
    assert f"field '{field}' is not a list" in output


@pytest.mark.parametrize(
    "answer", [{"errors": 5}, {"errors": "bad"}, {"meta": {"errors": 5}}, {"meta": 5}, 5, "str"]
)
def test_a_refused_send_with_an_odd_body_is_failed_not_in_flight(flow_dir, server, answer):
    server.answer = lambda seen: json_reply(answer, status=400)
    code, output = run(flow_dir, SEND_EMAIL, server)
    assert code == EXIT_FAILED
    assert "HTTP 400" in output
    assert [status for status, _ in outcomes()] == ["failed"]  # refused: never in flight


# --- 19: identifiers that are dot segments -------------------------------------------------


@pytest.mark.parametrize("ident, sent", [("..", "%2E%2E"), (".", "%2E")])
def test_a_dot_segment_id_stays_in_its_segment(flow_dir, server, ident, sent):
    flow = GET_PERSON.replace("id: u1", f'id: "{ident}"')
    path = flow_dir / "flow.yaml"
    path.write_text(flow)
    plan = subprocess.run(
        [sys.executable, "-m", "cio_flows.cli", "plan", str(path)],
        env={**os.environ, **env_for(server.url)},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    expected = f"/v1/customers/{sent}/attributes"
    assert expected in plan.stdout, plan.stdout + plan.stderr

    code, _ = run(flow_dir, flow, server)

    assert code == 0
    assert server.paths() == [f"{expected}?id_type=id"]


REQUEST = """\
version: 1
name: hostile
steps:
  - request: {api: app, method: GET, path: "{path}"}
"""


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example/x",
        "@evil.example/x",
        "/v1/../admin",
        "/v1/.",
        "/v1/a\\r\\nX-Evil: 1",
        "/v1/a\\0",
    ],
)
def test_a_request_path_that_could_retarget_is_refused(flow_dir, server, path):
    code, output = run(flow_dir, REQUEST.replace("{path}", path), server)
    assert code in (1, 2), output
    assert "path" in output
    assert server.seen == []


def test_an_at_sign_in_a_request_path_is_encoded(flow_dir, server):
    code, _ = run(flow_dir, REQUEST.replace("{path}", "/v1/customers/a@b.c/attributes"), server)
    assert code == 0
    assert server.paths() == ["/v1/customers/a%40b.c/attributes"]


# --- 23: terminal injection ----------------------------------------------------------------

INJECTION = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b[32m\rFAKE: all ok\nok  all good\u202e"


def test_server_text_cannot_drive_the_terminal(flow_dir, server):
    server.answer = lambda seen: json_reply({"errors": [{"detail": INJECTION}]}, status=400)
    code, output = run(flow_dir, SEND_EMAIL, server, "-v")
    assert code == EXIT_FAILED
    for char in ("\x1b", "\x07", "\r", "\u202e"):
        assert char not in output
    assert "\\x1b]52;c;" in output
    assert not any(line.startswith(("FAKE", "ok  all good")) for line in output.splitlines())


def test_data_cannot_drive_the_terminal(flow_dir, server):
    (flow_dir / "users.csv").write_text('id\n"r1\x1b[2J\rFAKE"\n')
    server.answer = lambda seen: json_reply({"errors": [{"batch_index": 0, "reason": "no"}]}, 207)
    code, output = run(flow_dir, ROWS, server)
    assert code == EXIT_FAILED
    assert "\x1b" not in output and "\r" not in output
    assert "r1\\x1b[2J\\rFAKE" in output


def test_plan_escapes_control_characters_from_data(flow_dir, server):
    (flow_dir / "users.csv").write_text('id\n"r1\x1b[2J\x9b2J\x07"\n', encoding="utf-8")
    path = flow_dir / "flow.yaml"
    path.write_text(ROWS)
    plan = subprocess.run(
        [sys.executable, "-m", "cio_flows.cli", "plan", str(path)],
        env={**os.environ, **env_for(server.url)},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert plan.returncode == 0, plan.stderr
    assert not any(char in plan.stdout for char in "\x1b\x9b\x07")
    assert "\\x9b2J" in plan.stdout
    assert server.seen == []
