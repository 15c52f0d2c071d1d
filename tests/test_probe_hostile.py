"""An outside probe of this round's features, each defect it found kept as a real-process test:
HTTP row sources that answer NaN, nest past the decoder's stack, drip, or point their next page
at another server; a Customer.io answer nested past the decoder's stack; `serve` given such a
body or a delivery whose data never fits the flow; a webhook flow run with no rows.

Every case checks the exit status (or HTTP status), that no traceback is printed, and that no
key leaves for a server it was not meant for.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from clerk_standin import WEBHOOK_SECRET, serving, svix_headers
from conftest import env_for
from hostile_server import HostileServer, Reply, Seen, json_reply, serve
from support import cli

from cio_flows.emulator import Emulator

pytestmark = pytest.mark.slow  # each test runs the CLI as a real process

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK = ROOT / "flows" / "clerk" / "webhook.yaml"
EXIT_FAILED, EXIT_INVALID = 1, 2
HANG_GUARD = 120  # seconds: only a run that hangs comes near it
SOURCE_TOKEN = "source-token-0123456789"

SOURCE_FLOW = """\
version: 1
name: probe_source
for_each:
  http:
    url: "{{ env.SOURCE_URL }}/users"
    headers: {Authorization: "Bearer {{ env.SOURCE_TOKEN }}"}
    timeout: 3
    PAGINATE
  key: "{{ row.id }}"
steps:
  - identify: {userId: "{{ row.id }}"}
"""


@pytest.fixture
def server() -> Iterator[HostileServer]:
    yield from serve(HostileServer())


@pytest.fixture
def elsewhere() -> Iterator[HostileServer]:
    yield from serve(HostileServer())


def _cli(tmp_path: Path, args: list[str], **env: str) -> tuple[int, str]:
    result = subprocess.run(
        cli(*args),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert SOURCE_TOKEN not in output
    return result.returncode, output


def _plan_source(tmp_path: Path, server: HostileServer, paginate: str = "") -> tuple[int, str]:
    (tmp_path / "flow.yaml").write_text(SOURCE_FLOW.replace("PAGINATE", paginate))
    return _cli(tmp_path, ["plan", "flow.yaml"], SOURCE_URL=server.url, SOURCE_TOKEN=SOURCE_TOKEN)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'[{"id": "a", "score": NaN}]', "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    ],
    ids=["NaN", "nested 100,000 deep"],
)
def test_a_source_page_that_is_not_plain_json_is_exit_2(
    tmp_path: Path, server: HostileServer, body: bytes, said: str
) -> None:
    server.answer = lambda seen: Reply(200, body, {"Content-Type": "application/json"})
    code, output = _plan_source(tmp_path, server)
    assert code == EXIT_INVALID, output
    assert f"page 1: {server.url}/users: the answer is {said}" in output


def test_a_source_page_that_drips_fails_at_its_timeout(
    tmp_path: Path, server: HostileServer
) -> None:
    # 200 bytes at one a second: each read is quick, only a deadline for the page stops it.
    body = b'[{"id": "a"}]' + b" " * 200
    server.answer = lambda seen: Reply(200, body, {"Content-Type": "application/json"}, 1.0)
    code, output = _plan_source(tmp_path, server)
    assert code == EXIT_INVALID, output
    assert "the answer did not arrive within the timeout" in output


def test_a_next_page_on_another_server_is_refused_before_the_key_goes_there(
    tmp_path: Path, server: HostileServer, elsewhere: HostileServer
) -> None:
    def first(seen: Seen) -> Reply:
        return json_reply({"data": [{"id": "a"}], "next": f"{elsewhere.url}/steal"})

    server.answer = first
    code, output = _plan_source(
        tmp_path, server, 'paginate: {style: next, value: "{{ response.next }}"}'
    )
    assert code == EXIT_INVALID, output
    assert "the next page is on another server" in output
    assert elsewhere.seen == []  # the source's Authorization header never went there


def test_a_next_page_on_the_same_server_is_followed(tmp_path: Path, server: HostileServer) -> None:
    def pages(seen: Seen) -> Reply:
        if seen.path.startswith("/users"):
            return json_reply({"data": [{"id": "a"}], "next": f"{server.url}/more"})
        return json_reply({"data": [{"id": "b"}], "next": None})

    server.answer = pages
    code, output = _plan_source(
        tmp_path, server, 'paginate: {style: next, value: "{{ response.next }}"}'
    )
    assert code == 0, output
    assert server.paths() == ["/users", "/more"]


def test_an_answer_nested_past_the_decoder_fails_the_step_not_the_run(
    tmp_path: Path, server: HostileServer
) -> None:
    (tmp_path / "flow.yaml").write_text(
        "version: 1\nname: deep\nsteps:\n  - get_person: {id: u1}\n"
    )
    deep = b"[" * 100_000 + b"]" * 100_000
    server.answer = lambda seen: Reply(200, deep, {"Content-Type": "application/json"})
    code, output = _cli(tmp_path, ["run", "flow.yaml"], **env_for(server.url))
    assert code == EXIT_FAILED, output
    assert "answer is not JSON" in output
    assert "interrupted" not in output


def test_a_webhook_flow_run_without_rows_is_exit_2_naming_data(tmp_path: Path) -> None:
    for command in (["run", str(WEBHOOK), "--emulator"], ["plan", str(WEBHOOK)]):
        code, output = _cli(tmp_path, command, CIO_FLOWS_JOURNAL=str(tmp_path / "j.db"))
        assert code == EXIT_INVALID, output
        assert "rows come from outside" in output
        assert "--data FILE" in output
    code, output = _cli(tmp_path, ["validate", str(WEBHOOK)])
    assert code == 0, output


# --- serve -------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Emulator]]:
    with Emulator() as emulator:
        keys = emulator.credentials
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")},
            "CIO_FLOWS_JOURNAL": str(tmp_path / "journal.db"),
            "CUSTOMERIO_SITE_ID": keys.site_id,
            "CUSTOMERIO_TRACK_TOKEN": keys.track_key,
            "CUSTOMERIO_APP_TOKEN": keys.app_key,
            **{f"CUSTOMERIO_{f}_URL": emulator.url for f in ("TRACK", "PIPELINES", "APP")},
        }
        with serving(WEBHOOK, env) as url:
            yield url, emulator


def _deliver(url: str, body: bytes, msg_id: str) -> requests.Response:
    headers = svix_headers(body, msg_id, int(time.time()), WEBHOOK_SECRET)
    return requests.post(url, data=body, headers=headers, timeout=HANG_GUARD)


def test_serve_answers_a_body_nested_past_the_decoder_with_400(served) -> None:
    url, emulator = served
    answer = _deliver(url, b"[" * 100_000 + b"]" * 100_000, "msg_deep")
    assert answer.status_code == 400, answer.text
    assert emulator.inspect.requests("track") == []


def test_serve_answers_data_that_never_fits_the_flow_with_422(served) -> None:
    """A user.created whose data lacks a field the flow reads fails the same way on every
    redelivery: 422 (input), not a 5xx that asks the sender to retry for days."""
    url, _ = served
    event = {"type": "user.created", "data": {"id": "user_1", "created_at": 1700000000000}}
    answer = _deliver(url, json.dumps(event).encode(), "msg_partial")
    assert answer.status_code == 422, answer.text
    assert answer.json()["status"] == "invalid"


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_settle_grace_and_prune_age_must_be_finite(tmp_path: Path, value: str) -> None:
    """`--settle-grace nan` passed click's range check and polled Customer.io forever."""
    for args in (
        ["run", str(WEBHOOK), "--resume", "20260101000000aaaaaa", "--settle-grace", value],
        ["runs", "prune", "--older-than", value],
    ):
        code, output = _cli(tmp_path, args, CIO_FLOWS_JOURNAL=str(tmp_path / "j.db"))
        assert code == EXIT_INVALID, output
        assert f"expected a finite number, found {value}" in output
