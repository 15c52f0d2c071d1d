"""Campaigns run by the emulator on its clock, with templates rendered by Liquid.

No wall-clock assertions: messages are polled for with a generous timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from cio_flows.emulator import Emulator
from cio_flows.emulator.workspace import WorkspaceError

from .conftest import Client

FREE = {"attribute": {"field": "plan", "operator": "eq", "value": "free"}}
WORKSPACE: dict[str, Any] = {
    "clock": {"start": "2025-03-01T09:00:00Z"},
    "templates": [
        {
            "id": 1,
            "trigger": "welcome",
            "name": "Welcome email",
            "channel": "email",
            "subject": "Welcome, {{ customer.first_name }}!",
            "body": "<p>Hi {{ customer.first_name }}, you signed up on {{ event.source }}</p>",
        },
        {
            "id": 2,
            "trigger": "nudge",
            "name": "Upgrade nudge",
            "channel": "email",
            "subject": "{{ customer.first_name }}, still on {{ customer.plan }}?",
            "body": "<p>Try pro</p>",
        },
        {
            "id": 3,
            "trigger": "pro_hello",
            "name": "Pro hello",
            "channel": "email",
            "subject": "Thanks for going pro, {{ customer.first_name | upcase }}",
            "body": "<p>Pro</p>",
        },
        {
            "id": 4,
            "trigger": "receipt",
            "name": "Receipt",
            "channel": "email",
            "subject": "Receipt {{ trigger.order_id }}",
            "body": "<p>{{ trigger.amount | times: 2 }}</p>",
        },
        {
            "id": 5,
            "trigger": "broken",
            "name": "Broken",
            "channel": "email",
            "subject": "Hi {% if %}",
            "body": "x",
        },
    ],
    "segments": [
        {
            "id": 1,
            "name": "Pro plan",
            "type": "dynamic",
            "filter": {"attribute": {"field": "plan", "operator": "eq", "value": "pro"}},
        }
    ],
    "campaigns": [
        {
            "id": 10,
            "name": "Welcome series",
            "trigger": {"event": "signed_up"},
            "actions": [
                {"wait": 2},
                {"send": "welcome"},
                {"wait": "1d"},
                {"send": "nudge", "when": FREE},
            ],
        },
        {
            "id": 20,
            "name": "Pro onboarding",
            "trigger": {"segment": 1},
            "actions": [{"send": 3}],
        },
    ],
}


@pytest.fixture(scope="module")
def journeys_emulator() -> Iterator[Emulator]:
    with Emulator(workspace=WORKSPACE, delivery={"sent": 0.05, "delivered": 0.1}) as emu:
        yield emu


@pytest.fixture
def client(journeys_emulator: Emulator) -> Iterator[Client]:
    journeys_emulator.reset()
    c = Client(journeys_emulator)
    yield c
    c.http.close()


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def messages_of(client: Client, person: str) -> list[dict[str, Any]]:
    r = client.app("GET", f"/v1/customers/{person}/messages")
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def sign_up(client: Client, person: str, name: str, plan: str) -> None:
    attrs = {"email": f"{person}@example.com", "first_name": name, "plan": plan}
    assert client.track("PUT", f"/api/v1/customers/{person}", attrs).status_code == 200
    event = {"name": "signed_up", "data": {"source": "web"}}
    assert client.track("POST", f"/api/v1/customers/{person}/events", event).status_code == 200


def test_a_journey_on_the_clock(client: Client) -> None:
    sign_up(client, "ada", "Ada", "free")
    sign_up(client, "bob", "Bob", "team")
    r = client.track("PUT", "/api/v1/customers/bob", {"plan": "pro"})
    assert r.status_code == 200

    ada = poll(lambda: messages_of(client, "ada"), lambda m: len(m) >= 1)
    bob = poll(lambda: messages_of(client, "bob"), lambda m: len(m) >= 2)
    assert [(m["campaign_id"], m["subject"]) for m in ada] == [(10, "Welcome, Ada!")]
    assert ada[0]["action_id"] == 10002 and ada[0]["message_template_id"] == 1
    assert sorted((m["campaign_id"], m["subject"]) for m in bob) == [
        (10, "Welcome, Bob!"),
        (20, "Thanks for going pro, BOB"),
    ]
    archived = client.app("GET", f"/v1/messages/{ada[0]['id']}/archived_message")
    assert archived.json()["archived_message"]["body"] == "<p>Hi Ada, you signed up on web</p>"
    content = {m["id"]: m["content"] for m in client.emulator.inspect.messages()}
    assert content[ada[0]["id"]] == "<p>Hi Ada, you signed up on web</p>"

    before = client.emulator.clock()["now"]
    r = client.http.post(client.url + "/_emulator/clock", json={"advance": "1d"})
    assert r.status_code == 200, r.text
    assert r.json()["sent"] == 1 and r.json()["now"] >= before + 86400
    ada = messages_of(client, "ada")
    assert [m["subject"] for m in ada] == ["Ada, still on free?", "Welcome, Ada!"]
    assert ada[0]["action_id"] == 10004
    assert ada[0]["created"] >= ada[1]["created"] + 86400  # stamped with the clock
    assert len(messages_of(client, "bob")) == 2  # bob is on pro: no nudge

    # /v1/campaigns and the campaign's messages and metrics reflect what ran.
    campaigns = client.app("GET", "/v1/campaigns").json()["campaigns"]
    welcome = next(c for c in campaigns if c["id"] == 10)
    assert welcome["name"] == "Welcome series"
    assert welcome["actions"] == [{"id": 10002, "type": "email"}, {"id": 10004, "type": "email"}]
    listed = client.app("GET", "/v1/messages", params={"campaign_id": 10}).json()["messages"]
    assert len(listed) == 3
    series = client.app(
        "GET", "/v1/campaigns/10/metrics", params={"version": "1", "period": "days", "steps": 3}
    ).json()["metric"]["series"]
    assert sum(series["created"]) == 3


def test_the_clock_starts_where_the_workspace_says(client: Client) -> None:
    view = client.http.get(client.url + "/_emulator/clock").json()
    assert view["iso"].startswith("2025-03-01T09:0")
    r = client.track("PUT", "/api/v1/customers/cara", {"first_name": "Cara"})
    assert r.status_code == 200
    created = client.attributes("cara").json()["customer"]["timestamps"]["first_name"]
    assert 1740819600 <= created < 1740819600 + 3600
    bad = client.http.post(client.url + "/_emulator/clock", json={"advance": "soon"})
    assert bad.status_code == 400 and "soon" in bad.json()["error"]


def test_transactional_sends_render_trigger_data(client: Client) -> None:
    client.track("PUT", "/api/v1/customers/dan", {"email": "dan@example.com"})
    body = {
        "transactional_message_id": "receipt",
        "to": "dan@example.com",
        "identifiers": {"id": "dan"},
        "message_data": {"order_id": "A-7", "amount": 21},
    }
    r = client.app("POST", "/v1/send/email", body)
    assert r.status_code == 200, r.text
    message = client.app("GET", f"/v1/messages/{r.json()['delivery_id']}").json()["message"]
    assert message["subject"] == "Receipt A-7"
    content = {m["id"]: m["content"] for m in client.emulator.inspect.messages()}
    assert content[message["id"]] == "<p>42</p>"


def test_a_template_error_fails_the_message(client: Client) -> None:
    body = {"transactional_message_id": 5, "to": "eve@example.com", "identifiers": {"id": "eve"}}
    r = client.app("POST", "/v1/send/email", body)
    assert r.status_code == 200, r.text
    delivery_id = r.json()["delivery_id"]

    def fetch() -> dict[str, Any]:
        return client.app("GET", f"/v1/messages/{delivery_id}").json()["message"]

    message = poll(fetch, lambda m: "failed" in m["metrics"])
    assert "failed" in message["metrics"] and "delivered" not in message["metrics"]
    assert "Liquid error in the subject" in message["failure_message"]
    assert "missing expression" in message["failure_message"]


@pytest.mark.parametrize(
    "body",
    [
        "{% for i in (1..100000000) %}x{% endfor %}",
        '{% assign s = "aaaaaaaaaa" %}{% for i in (1..30) %}{% assign s = s | append: s %}'
        "{% endfor %}{{ s | size }}",
    ],
    ids=["endless loop", "doubling string"],
)
def test_a_runaway_template_fails_its_message_quickly(client: Client, body: str) -> None:
    send = {
        "to": "zed@example.com",
        "identifiers": {"id": "zed"},
        "from": "us@example.com",
        "subject": "Hi",
        "body": body,
    }
    r = client.app("POST", "/v1/send/email", send)
    assert r.status_code == 200, r.text
    delivery_id = r.json()["delivery_id"]

    def fetch() -> dict[str, Any]:
        return client.app("GET", f"/v1/messages/{delivery_id}").json()["message"]

    message = poll(fetch, lambda m: "failed" in m["metrics"])
    assert "Liquid error in the body" in message["failure_message"]
    assert "limit" in message["failure_message"]


def test_the_python_api_advances_the_clock(client: Client) -> None:
    sign_up(client, "fay", "Fay", "free")
    poll(lambda: messages_of(client, "fay"), lambda m: len(m) >= 1)
    answer = client.emulator.advance_clock(86400)
    assert answer["sent"] == 1
    assert messages_of(client, "fay")[0]["subject"] == "Fay, still on free?"


def test_an_advance_runs_each_step_at_its_own_time(client: Client) -> None:
    """Two days at once: the welcome (due after 2 s) and the nudge (a day later) both run,
    each stamped with the moment it fell due."""
    sign_up(client, "gus", "Gus", "free")
    answer = client.emulator.advance_clock("2d")
    assert answer["sent"] >= 2
    welcome, nudge = sorted(messages_of(client, "gus"), key=lambda m: m["created"])
    assert nudge["created"] - welcome["created"] == 86400


@pytest.mark.parametrize(
    ("campaign", "message"),
    [
        ({"id": 1, "name": "x", "trigger": {"event": "e"}, "actions": []}, "non-empty list"),
        ({"id": 1, "name": "x", "trigger": {"segment": 99}, "actions": [{"wait": 1}]}, "99"),
        ({"id": 1, "name": "x", "trigger": {"event": "e"}, "actions": [{"send": "nope"}]}, "nope"),
        ({"id": 1, "name": "x", "trigger": {"event": "e"}, "actions": [{"wait": "soon"}]}, "soon"),
        ({"id": 1, "name": "x", "trigger": {"date": 1}, "actions": [{"wait": 1}]}, "trigger"),
    ],
)
def test_bad_campaigns_are_refused_with_the_entry_named(campaign: dict, message: str) -> None:
    with pytest.raises(WorkspaceError) as err:
        Emulator(workspace={"campaigns": [campaign]}).close()
    assert "campaigns[0]" in str(err.value) and message in str(err.value)


def test_a_misspelt_template_key_is_refused() -> None:
    templates = [{"id": 1, "name": "x", "subjet": "Hi"}]
    with pytest.raises(WorkspaceError, match=r"templates\[0\]: unknown keys subjet"):
        Emulator(workspace={"templates": templates}).close()


def test_the_workspace_clock_must_be_a_time() -> None:
    with pytest.raises(WorkspaceError, match="ISO-8601"):
        Emulator(workspace={"clock": {"start": "tuesday"}}).close()


def test_the_clock_endpoint_needs_no_key(journeys_emulator: Emulator) -> None:
    assert requests.get(journeys_emulator.url + "/_emulator/clock", timeout=10).status_code == 200


def test_ids_sqlite_reuses_do_not_hide_the_next_person(client: Client) -> None:
    """A deleted person's pk and last event id go to the next person and event: the next
    sign-up still starts the journey, and the deleted one's journey ends."""
    sign_up(client, "hal", "Hal", "free")
    assert client.track("DELETE", "/api/v1/customers/hal").status_code == 200
    sign_up(client, "ivy", "Ivy", "free")
    ivy = poll(lambda: messages_of(client, "ivy"), lambda m: len(m) >= 1)
    assert [m["subject"] for m in ivy] == ["Welcome, Ivy!"]
    client.emulator.advance_clock("1d")
    welcomes = [m for m in client.emulator.inspect.messages() if m["campaign_id"] == 10]
    assert sorted(m["customer_id"] for m in welcomes) == ["ivy", "ivy"]


def test_a_reporting_webhook_hears_of_campaign_messages(client: Client) -> None:
    from .test_reporting_webhooks import Receiver

    receiver = Receiver()
    try:
        hook = {"name": "journeys", "endpoint": receiver.url, "events": ["email_sent"]}
        assert client.app("POST", "/v1/reporting_webhooks", hook).status_code == 200
        sign_up(client, "jon", "Jon", "free")  # the welcome goes out 2 s later
        posts = receiver.wait_for(1)
        data = json.loads(posts[0]["body"])["data"]
        assert (data["campaign_id"], data["action_id"]) == (10, 10002)
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_a_campaign_filter_keeps_others_out() -> None:
    workspace = {
        **WORKSPACE,
        "campaigns": [
            {
                "id": 10,
                "name": "German welcome",
                "trigger": {"event": "signed_up"},
                "filter": {"attribute": {"field": "country", "operator": "eq", "value": "DE"}},
                "actions": [{"send": "welcome"}],
            }
        ],
    }
    with Emulator(workspace=workspace) as emu:
        client = Client(emu)
        for person, country in (("kai", "DE"), ("lea", "FR")):
            attrs = {"first_name": person.title(), "country": country}
            client.track("PUT", f"/api/v1/customers/{person}", attrs)
            client.track("POST", f"/api/v1/customers/{person}/events", {"name": "signed_up"})
        kai = poll(lambda: messages_of(client, "kai"), lambda m: len(m) >= 1)
        assert [m["subject"] for m in kai] == ["Welcome, Kai!"]
        campaign = client.app("GET", "/v1/campaigns/10").json()["campaign"]
        assert (campaign["type"], campaign["event_name"]) == ("event", "signed_up")
        emu.advance_clock(60)  # a tick has run since lea's event too
        assert messages_of(client, "lea") == []
        client.http.close()


def test_broadcast_subjects_render_trigger_data(client: Client) -> None:
    workspace = {
        **WORKSPACE,
        "broadcasts": [
            {"id": 3, "name": "Sale", "channel": "email", "subject": "{{ trigger.pct }}% off"}
        ],
        "people": [{"id": "mia", "email": "mia@example.com"}],
    }
    with Emulator(workspace=workspace, delivery={"trigger": 0}) as emu:
        other = Client(emu)
        r = other.app("POST", "/v1/campaigns/3/triggers", {"ids": ["mia"], "data": {"pct": 20}})
        assert r.status_code == 200, r.text
        found = poll(lambda: messages_of(other, "mia"), lambda m: len(m) >= 1)
        assert [m["subject"] for m in found] == ["20% off"]
        other.http.close()


def test_the_trial_journey_scenario_runs_its_journey_on_the_demo() -> None:
    """flows/scenarios/trial_journey.yaml skips its journey where campaign 30 is missing: on the
    demo workspace it must not skip, and its person gets the welcome and the nudge."""
    from cio_flows import RunOptions, run_flow
    from cio_flows.api import options_for_emulator

    flow = Path(__file__).parents[2] / "flows" / "scenarios" / "trial_journey.yaml"
    with Emulator() as emu:
        summary = run_flow(flow, options_for_emulator(emu, RunOptions(environ={}, journal=False)))
        assert summary.ok, summary
        sent = [m for m in emu.inspect.messages() if m["campaign_id"] == 30]
        assert [m["action_id"] for m in sent] == [30002, 30004]
