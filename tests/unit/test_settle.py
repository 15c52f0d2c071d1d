"""Settling unknown sends against a fake messages API (run/settle.py): found, absent after the
grace period, unreadable; and the facts an in-flight mark keeps to find a send later."""

from __future__ import annotations

from typing import Any

import pytest

from cio_flows.errors import TransportError
from cio_flows.run.journal import InFlightSend
from cio_flows.run.settle import (
    ABSENT,
    FOUND,
    UNREADABLE,
    Settler,
    counts,
    default_grace,
    send_facts,
)
from cio_flows.wire.types import Request, Response

SINCE = 1_700_000_100.4
WELCOME = {
    "transactional_message_id": "welcome",
    "to": "ann@example.com",
    "identifiers": {"id": "u1"},
}


def unknown(row: str = "u1", body: dict[str, Any] | None = None) -> InFlightSend:
    request = Request("app", "POST", "/v1/send/email", body or WELCOME)
    return InFlightSend(row, "steps.1", SINCE, send_facts(request))


def message(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "dlv-1",
        "type": "email",
        "recipient": "ann@example.com",
        "created": int(SINCE),
        "transactional_message_id": "welcome",
        "msg_template_id": 3,
    }
    return base | fields


class FakeMessagesApi:
    """GET /v1/customers/{id}/messages from a list that may grow over (fake) time; or raises."""

    def __init__(self, messages: list[dict[str, Any]] | None = None) -> None:
        self.messages = messages or []
        self.later: list[tuple[float, dict[str, Any]]] = []  # (listed at, message)
        self.now = 0.0
        self.reads: list[Request] = []
        self.error: TransportError | None = None
        self.body: Any = None  # an answer of another shape

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self, request: Request) -> Response:
        self.reads.append(request)
        if self.error is not None:
            raise self.error
        if self.body is not None:
            return Response(200, self.body)
        listed = self.messages + [m for at, m in self.later if at <= self.now]
        start_ts = int(dict(request.params)["start_ts"])
        return Response(200, {"messages": [m for m in listed if m["created"] >= start_ts]})


def settler(api: FakeMessagesApi, grace: float = 10.0) -> Settler:
    return Settler(api, grace=grace, interval=1.0, clock=api.clock, sleep=api.sleep)


def test_a_send_listed_in_customer_io_is_found_with_its_delivery_id() -> None:
    api = FakeMessagesApi([message(id="dlv-other", recipient="bob@example.com"), message()])
    [settled] = settler(api).settle([unknown()])
    assert settled.how == FOUND
    assert settled.response == {"delivery_id": "dlv-1", "queued_at": int(SINCE)}
    assert "found in Customer.io (dlv-1)" in settled.reason
    # Read as the send named its person, from the second of the in-flight mark.
    [read] = api.reads
    assert read.path == "/v1/customers/u1/messages"
    assert ("id_type", "id") in read.params and ("start_ts", str(int(SINCE))) in read.params


def test_a_send_listed_late_is_found_within_the_grace_period() -> None:
    api = FakeMessagesApi()
    api.later.append((4.0, message()))
    [settled] = settler(api).settle([unknown()])
    assert settled.how == FOUND
    assert len(api.reads) == 5  # at 0, 1, 2, 3 and 4 s


def test_a_send_absent_after_the_grace_period_is_to_be_sent_again() -> None:
    api = FakeMessagesApi(
        [
            message(id="other-template", transactional_message_id="reset"),
            message(id="other-channel", type="twilio"),
            message(id="other-recipient", recipient="bob@example.com"),
            message(id="before-the-mark", created=int(SINCE) - 5),
        ]
    )
    api.later.append((11.0, message()))  # listed after the grace period: too late
    [settled] = settler(api, grace=10.0).settle([unknown()])
    assert settled.how == ABSENT
    assert "not in Customer.io after 10 s: sent again" in settled.reason
    assert api.now >= 10.0  # it waited the whole grace period...
    assert api.now < 11.0 and len(api.reads) == 11  # ...and read once more at its end


@pytest.mark.parametrize(
    "error",
    [
        TransportError("HTTP 401: unauthorized", status=401),
        TransportError("HTTP 503 after 4 attempts", status=503, attempts=4),
        TransportError("connection refused", attempts=3),
    ],
    ids=["refused", "unavailable", "unreachable"],
)
def test_an_api_error_leaves_the_send_unknown_at_once(error: TransportError) -> None:
    api = FakeMessagesApi([message()])
    api.error = error
    [settled] = settler(api).settle([unknown()])
    assert settled.how == UNREADABLE
    assert str(error) in settled.reason and "outcome still unknown" in settled.reason
    assert len(api.reads) == 1 and api.now == 0.0  # no waiting on an API that cannot answer


def test_an_answer_without_a_message_list_is_unreadable_not_absent() -> None:
    api = FakeMessagesApi()
    api.body = {}  # a server that answers 200 to anything
    [settled] = settler(api).settle([unknown()])
    assert settled.how == UNREADABLE


def test_an_unknown_person_is_no_message_yet() -> None:
    api = FakeMessagesApi()
    api.error = TransportError("HTTP 404: not found", status=404)
    [settled] = settler(api, grace=2.0).settle([unknown()])
    assert settled.how == ABSENT  # a send would have created the person


def test_two_unknown_sends_never_claim_the_same_message() -> None:
    api = FakeMessagesApi([message()])
    first, second = settler(api, grace=2.0).settle([unknown("u1"), unknown("u1-again")])
    assert (first.how, second.how) == (FOUND, ABSENT)


def test_sends_it_cannot_look_up_stay_unknown() -> None:
    raw = InFlightSend("u1", "steps.0", SINCE, send_facts(Request("app", "POST", "/v1/x", {})))
    nobody = unknown(body={"transactional_message_id": 3, "to": "a@x.com, b@x.com"})
    old = InFlightSend("u1", "steps.0", SINCE, None)  # a journal from before the facts
    api = FakeMessagesApi()
    settled = settler(api).settle([raw, nobody, old])
    assert [s.how for s in settled] == [UNREADABLE] * 3
    assert counts(settled) == {FOUND: 0, ABSENT: 0, UNREADABLE: 3}
    assert api.reads == []


def test_an_email_without_identifiers_is_looked_up_by_its_address() -> None:
    api = FakeMessagesApi([message(recipient="ann@example.com", msg_template_id=7)])
    del api.messages[0]["transactional_message_id"]  # the answer carries only the number
    body = {"transactional_message_id": 7, "to": "Ann <ANN@example.com>"}
    [settled] = settler(api).settle([unknown(body=body)])
    assert settled.how == FOUND
    assert ("id_type", "email") in api.reads[0].params
    assert api.reads[0].path == "/v1/customers/ann%40example.com/messages"


def test_a_broadcast_trigger_is_settled_from_the_broadcast_s_trigger_list() -> None:
    request = Request("app", "POST", "/v1/campaigns/12/triggers", {"data": {}})
    send = InFlightSend("-", "steps.0", SINCE, send_facts(request))
    triggers = [{"id": 4, "created_at": int(SINCE) - 60}, {"id": 5, "created_at": int(SINCE)}]

    def read(request: Request) -> Response:
        assert request.path == "/v1/broadcasts/12/triggers"
        return Response(200, {"triggers": triggers})

    [settled] = Settler(read, grace=0).settle([send])
    assert (settled.how, settled.response) == (FOUND, {"id": 5})


def test_the_grace_period_is_short_only_on_a_loopback_address() -> None:
    assert default_grace("http://127.0.0.1:8710") == default_grace("http://localhost:1") == 3.0
    assert default_grace("https://api.customer.io") == 60.0
