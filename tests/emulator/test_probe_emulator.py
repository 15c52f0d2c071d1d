"""An outside probe of the emulator's clock and Liquid templates: abuse answered with 400 or a
failed message, never a 500, a stalled server or a clock every later request trips over."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from cio_flows.emulator import Emulator
from cio_flows.emulator.clock import ClockError, parse_start
from cio_flows.emulator.workspace import WorkspaceError

from .conftest import Client

WORKSPACE: dict[str, Any] = {
    "templates": [
        {"id": 1, "trigger": "hello", "name": "Hello", "channel": "email", "subject": "Hi"}
    ]
}


@pytest.fixture(scope="module")
def probe_emulator() -> Iterator[Emulator]:
    with Emulator(workspace=WORKSPACE) as emu:
        yield emu


@pytest.fixture
def client(probe_emulator: Emulator) -> Iterator[Client]:
    probe_emulator.reset()
    c = Client(probe_emulator)
    yield c
    c.http.close()


@pytest.mark.parametrize(
    "advance",
    ["nan", "inf", 1e308, "1e308", "99999999999d", "9999999999999999999999999999d"],
)
def test_an_unreasonable_advance_is_400_and_the_clock_still_works(
    client: Client, advance: Any
) -> None:
    before = client.app("GET", "/_emulator/clock").json()["now"]
    answer = client.app("POST", "/_emulator/clock", {"advance": advance})
    assert answer.status_code == 400, answer.text
    assert "advance" in answer.json()["error"] or "clock" in answer.json()["error"]
    after = client.app("GET", "/_emulator/clock")
    assert after.status_code == 200, after.text
    assert before <= after.json()["now"] < before + 86400
    send = {"transactional_message_id": 1, "to": "a@example.com", "identifiers": {"id": "a"}}
    assert client.app("POST", "/v1/send/email", send).status_code == 200


def test_json_nan_as_an_advance_is_400(client: Client) -> None:
    answer = client.http.post(
        client.url + "/_emulator/clock",
        data=b'{"advance": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert client.app("GET", "/_emulator/clock").status_code == 200


def test_the_clock_cannot_be_pushed_past_year_9999_in_steps(client: Client) -> None:
    for _ in range(30):  # 30 x 999 years: past 9999 long before the last
        answer = client.app("POST", "/_emulator/clock", {"advance": f"{999 * 365}d"})
        if answer.status_code == 400:
            assert "cannot pass 9999-12-31" in answer.json()["error"]
            break
        assert answer.status_code == 200, answer.text
    else:
        pytest.fail("the clock passed the year 9999")
    assert client.app("GET", "/_emulator/clock").json()["iso"].startswith("9")


@pytest.mark.parametrize("start", [1e308, float("nan"), -1e15])
def test_a_workspace_clock_start_out_of_range_is_refused(start: float) -> None:
    with pytest.raises(ClockError):
        parse_start(start)
    with pytest.raises(WorkspaceError):
        Emulator(workspace={"clock": {"start": start}}).close()


def _failure_of(client: Client, subject: str) -> str:
    send = {
        "to": "zed@example.com",
        "identifiers": {"id": "zed"},
        "from": "us@example.com",
        "subject": subject,
        "body": "<p>hi</p>",
    }
    answer = client.app("POST", "/v1/send/email", send)
    assert answer.status_code == 200, answer.text
    delivery_id = answer.json()["delivery_id"]
    deadline = time.monotonic() + 30  # hang guard: the message fails at once
    while time.monotonic() < deadline:
        message = client.app("GET", f"/v1/messages/{delivery_id}").json()["message"]
        if "failed" in message["metrics"]:
            return str(message["failure_message"])
        time.sleep(0.05)
    raise AssertionError("the message never failed")


@pytest.mark.parametrize(
    ("subject", "said"),
    [
        ("{{ (1..50000000) | join: ',' | size }}", "a range of 50,000,000 items"),
        ("{{ (1..5000000) | sort | first }}", "a range of 5,000,000 items"),
        ("{{ -99999999999999 | date: '%Y' }}", "out of range"),
    ],
    ids=["join of 50M range", "sort of 5M range", "date out of range"],
)
def test_a_liquid_bomb_or_overflow_fails_its_message(
    client: Client, subject: str, said: str
) -> None:
    failure = _failure_of(client, subject)
    assert "Liquid error in the subject" in failure
    assert said in failure
    ok = {"transactional_message_id": 1, "to": "a@example.com", "identifiers": {"id": "a"}}
    assert client.app("POST", "/v1/send/email", ok).status_code == 200


def test_a_short_range_still_renders(client: Client) -> None:
    send = {
        "to": "amy@example.com",
        "identifiers": {"id": "amy"},
        "from": "us@example.com",
        "subject": "{{ (1..5) | join: '-' }}",
        "body": "x",
    }
    answer = client.app("POST", "/v1/send/email", send)
    delivery_id = answer.json()["delivery_id"]
    message = client.app("GET", f"/v1/messages/{delivery_id}").json()["message"]
    assert message["subject"] == "1-2-3-4-5"
