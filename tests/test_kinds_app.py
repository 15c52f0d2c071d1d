"""The App-side step kinds of issue 11: manual segments, in-app and inbox sends, API-triggered
broadcasts, message and activity reads, and the raw `request`.

Against a recording server: each family's auth and bodies valid per the wire schemas, ids split
into calls of 1,000, paging and the answers a flow sees. Against a fault server through the CLI:
a trigger or send whose answer is lost is UNKNOWN and never resent. Against the emulator: the
answers unwrapped, paged and null-filled as the contract says.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from conftest import default_answer, env_for
from test_hardening_faults import CLOSE, journal_outcomes, run_cli, run_id_of

# Fixtures, registered here under these names: a server that can drop the line, quick backoff.
from test_hardening_faults import fault_server as lossy_server_fixture  # noqa: F401
from test_hardening_faults import quick_retries as quick_backoff  # noqa: F401
from test_wire import check_requests

from cio_flows import RunOptions, run_flow
from cio_flows.api import options_for_emulator
from cio_flows.cli import main
from cio_flows.emulator import Emulator
from cio_flows.run.events import StepFinished
from cio_flows.wire import kinds
from cio_flows.wire.families import BROADCAST_BUCKET, default_rates
from cio_flows.wire.ratelimit import RateLimiter, RateLimits


def query(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query)


def message(delivery_id: str, **metrics: int) -> dict:
    return {"id": delivery_id, "metrics": {"created": 1, **metrics}, "created": 1, "type": "email"}


def app_answers(request):
    """Customer.io-shaped answers for every path the kinds of this file call."""
    path, method = request.path.split("?")[0], request.method
    start = query(request.path).get("start", [""])[0]
    if method == "POST" and path == "/v1/campaigns/1/triggers":
        return 200, {}, {"id": 7}
    if path == "/v1/campaigns/1/triggers/7":
        return 200, {}, {"id": 7, "broadcast_id": 1, "created_at": 1700000000}
    if path == "/v1/campaigns/1/triggers/7/errors":  # an integer cursor, 0 on the last page
        page = {"": (["0 : no person x"], 1), "1": (["1 : no person y"], 0)}[start]
        return 200, {}, {"errors": page[0], "next": page[1]}
    if path == "/v1/messages/dlv_1":
        return 200, {}, {"message": message("dlv_1", sent=2)}
    if path in ("/v1/messages", "/v1/customers/u1/messages"):
        page = {"": ([message("m1"), message("m2")], "c2"), "c2": ([message("m3")], "")}[start]
        return 200, {}, {"messages": page[0], "next": page[1]}
    if path == "/v1/customers/u1/activities":
        activity = {"id": "a1", "type": "event", "name": "signed_up", "timestamp": 1}
        return 200, {}, {"activities": [activity], "next": ""}
    if path == "/v1/customers/u1/segments":
        return 200, {}, {"segments": [{"id": 3, "name": "Beta", "description": ""}]}
    if method == "POST" and path == "/v1/segments":
        return 200, {}, {"segment": {"id": 42, "name": request.body["segment"]["name"]}}
    if method == "DELETE" and path == "/v1/segments/42":
        return 204, {}, None
    if path == "/v1/segments/42/customer_count":
        return 200, {}, {"segment_id": 42, "count": 2}
    return default_answer(request)


EVERY_KIND = """\
version: 1
name: every_app_kind
steps:
  - create_segment: {name: Beta testers, description: early access}
    save: segment
    expect: response.id == 42 and response.name == "Beta testers"
  - add_to_segment: {segment_id: "{{ steps.segment.id }}", ids: [u1, 2], id_type: id}
    expect: response.ids == 2 and response.calls == 1
  - remove_from_segment: {segment_id: "{{ steps.segment.id }}", ids: [u1]}
  - person_segments: {id: u1}
    expect: response.segments[0].id == 3
  - send_in_app: {transactional_message_id: 8, identifiers: {id: u1}, message_data: {a: 1}}
    expect: response.delivery_id == "dlv_1"
  - send_inbox: {transactional_message_id: 9, identifiers: {email: u1@example.com}}
  - trigger_broadcast: {broadcast_id: 1, ids: [u1, u2], data: {coupon: BETA}, id_ignore_missing: true}
    save: trigger
    expect: 'response == {"id": 7}'
  - broadcast_status: {broadcast_id: 1, trigger_id: "{{ steps.trigger.id }}"}
    expect: response.processed_at is none and response.broadcast_id == 1
  - broadcast_errors: {broadcast_id: 1, trigger_id: "{{ steps.trigger.id }}"}
    expect: 'response.count == 2 and response.errors[1] == "1 : no person y"'
  - get_message: {id: dlv_1}
    expect:
      - response.id == "dlv_1" and response.metrics.sent == 2
      - response.metrics.delivered is none and response.failure_message is none
  - list_messages: {type: email, metric: sent, broadcast_id: 1, start_ts: "2024-01-01T00:00:00Z", end_ts: 1800000000}
    expect: response.count == 3 and response.messages[2].metrics.bounced is none
  - person_messages: {id: u1, limit: 2}
    expect: response.count == 2 and response.messages | map(attribute="id") | list == ["m1", "m2"]
  - person_activities: {id: u1, type: event, name: signed_up}
    expect: response.count == 1 and response.activities[0].name == "signed_up"
  - request: {api: app, method: GET, path: /v1/segments/42/customer_count}
    expect: 'response == {"segment_id": 42, "count": 2}'
  - request: {api: track, method: POST, path: /api/v1/customers/u1/events, body: {name: ping}}
  - request: {api: pipelines, method: POST, path: /v1/track, body: {userId: u1, event: ping, messageId: m-1}, idempotent: true}
  - delete_segment: {segment_id: "{{ steps.segment.id }}"}
"""


PIPELINES_REQUEST = "  - request: {api: pipelines,"


@pytest.mark.parametrize("pipelines", [True, False], ids=["pipelines", "track-only"])
def test_every_kind_sends_valid_requests_with_each_familys_auth(
    pipelines, recording_server, write_flow
):
    recording_server.handler = app_answers
    events: list[StepFinished] = []
    text = EVERY_KIND
    if not pipelines:  # the one step that needs the Pipelines key goes
        text = "\n".join(line for line in text.split("\n") if PIPELINES_REQUEST not in line)
    extra = {} if pipelines else {"CUSTOMERIO_PIPELINES_KEY": ""}
    summary = run_flow(
        write_flow(text),
        RunOptions(environ=env_for(recording_server.url, **extra)),
        [lambda e: isinstance(e, StepFinished) and events.append(e)],
    )
    assert summary.ok, [e.error for e in events if e.error]
    seen = check_requests(recording_server.requests)  # auth per family, bodies per wire schema
    assert ("POST pipelines /v1/track" in seen) == pipelines
    seen.discard("POST pipelines /v1/track")
    assert seen == {
        "POST app /v1/segments",
        "POST track /api/v1/segments/42/add_customers",
        "POST track /api/v1/segments/42/remove_customers",
        "GET app /v1/customers/u1/segments",
        "POST app /v1/send/in_app",
        "POST app /v1/send/inbox_message",
        "POST app /v1/campaigns/1/triggers",
        "GET app /v1/campaigns/1/triggers/7",
        "GET app /v1/campaigns/1/triggers/7/errors",
        "GET app /v1/messages/dlv_1",
        "GET app /v1/messages",
        "GET app /v1/customers/u1/messages",
        "GET app /v1/customers/u1/activities",
        "GET app /v1/segments/42/customer_count",
        "POST track /api/v1/customers/u1/events",
        "DELETE app /v1/segments/42",
    }
    sent = {(r.method, r.path.split("?")[0]): r for r in recording_server.requests}
    assert sent["POST", "/api/v1/segments/42/add_customers"].body == {"ids": ["u1", "2"]}
    assert query(sent["POST", "/api/v1/segments/42/add_customers"].path) == {"id_type": ["id"]}
    assert sent["POST", "/v1/segments"].body == {
        "segment": {"name": "Beta testers", "description": "early access"}
    }
    assert sent["POST", "/v1/campaigns/1/triggers"].body == {
        "ids": ["u1", "u2"],
        "data": {"coupon": "BETA"},
        "id_ignore_missing": True,
    }
    listed = query(sent["GET", "/v1/messages"].path)
    assert listed["start_ts"] == ["1704067200"] and listed["end_ts"] == ["1800000000"]
    assert (listed["type"], listed["metric"], listed["broadcast_id"]) == (
        ["email"],
        ["sent"],
        ["1"],
    )
    assert query(sent["GET", "/v1/customers/u1/messages"].path)["limit"] == ["2"]  # no more needed
    activities = query(sent["GET", "/v1/customers/u1/activities"].path)
    assert (activities["type"], activities["name"], activities["limit"]) == (
        ["event"],
        ["signed_up"],
        ["100"],
    )
    assert events[-1].status == "ok" and sent["DELETE", "/v1/segments/42"].body is None


def test_paged_reads_follow_cursors_and_stop_at_repeats_and_empty_pages(
    recording_server, write_flow
):
    cursors = iter(["c1", "c1", "c1"])  # a server that keeps answering the same cursor

    def answer(request):
        return 200, {}, {"messages": [message("m")], "next": next(cursors, "")}

    recording_server.handler = answer
    flow = write_flow("version: 1\nname: t\nsteps:\n  - list_messages:\n    save: all\n")
    events: list[StepFinished] = []
    run_flow(
        flow,
        RunOptions(environ=env_for(recording_server.url)),
        [lambda e: isinstance(e, StepFinished) and events.append(e)],
    )
    assert events[0].status == "ok" and events[0].saved["count"] == 2
    assert [query(r.path).get("start") for r in recording_server.requests] == [None, ["c1"]]


def test_add_to_segment_splits_2500_ids_into_three_calls(recording_server, write_flow):
    ids = [f"user_{n:04}" for n in range(2500)]
    flow = write_flow(
        "version: 1\nname: t\nsteps:\n"
        f"  - add_to_segment: {{segment_id: 9, id_type: email, ids: {json.dumps(ids)}}}\n"
        "    expect: response.ids == 2500 and response.calls == 3\n"
    )
    assert run_flow(flow, RunOptions(environ=env_for(recording_server.url))).ok
    calls = recording_server.requests
    assert [len(r.body["ids"]) for r in calls] == [1000, 1000, 500]
    assert [i for r in calls for i in r.body["ids"]] == ids  # in order, none twice
    assert {r.path for r in calls} == {"/api/v1/segments/9/add_customers?id_type=email"}
    check_requests(calls)


@pytest.mark.parametrize(
    ("step", "missing"),
    [
        ("add_to_segment: {segment_id: 1, ids: [a]}", "CUSTOMERIO_SITE_ID, CUSTOMERIO_TRACK_TOKEN"),
        ("remove_from_segment: {segment_id: 1, ids: [a]}", "CUSTOMERIO_SITE_ID"),
        ("request: {api: track, method: GET, path: /api/v1/accounts/region}", "CUSTOMERIO_SITE_ID"),
        ("trigger_broadcast: {broadcast_id: 1}", "CUSTOMERIO_APP_TOKEN"),
        ("request: {api: '{{ env.API }}', method: GET, path: /v1/x}", "CUSTOMERIO_SITE_ID"),
    ],
)
def test_a_kind_without_its_keys_exits_2_before_any_request(
    step, missing, recording_server, write_flow
):
    flow = write_flow(f"version: 1\nname: t\nsteps:\n  - identify: {{userId: u}}\n  - {step}\n")
    only_pipelines = env_for(recording_server.url, CUSTOMERIO_SITE_ID="", CUSTOMERIO_TRACK_TOKEN="")
    if "broadcast" in step:
        only_pipelines = env_for(recording_server.url, CUSTOMERIO_APP_TOKEN="")
    only_pipelines["API"] = "app"
    result = CliRunner().invoke(main, ["run", str(flow)], env=only_pipelines)
    assert result.exit_code == 2, result.output
    assert "missing credentials" in result.output and missing in result.output
    assert recording_server.requests == []


def test_broadcast_triggers_have_their_own_bucket_of_one_per_ten_seconds():
    assert default_rates()[BROADCAST_BUCKET] == 0.1
    assert RateLimits.defaults().rates[BROADCAST_BUCKET] == 0.1
    trigger = kinds.get("trigger_broadcast").first_request({"broadcast_id": 1}, None, "track")
    raw = kinds.get("request").first_request(
        {"api": "app", "method": "POST", "path": "/v1/campaigns/1/triggers"}, None, "track"
    )
    send = kinds.get("send_in_app").first_request(
        {"transactional_message_id": 1, "identifiers": {"id": "u"}}, None, "track"
    )
    assert trigger.rate_bucket == raw.rate_bucket == BROADCAST_BUCKET
    assert send.rate_bucket == "app_send"
    now = [1000.0]
    waits: list[float] = []
    limiter = RateLimiter(
        default_rates()[BROADCAST_BUCKET], clock=lambda: now[0], sleep=waits.append
    )
    assert [limiter.acquire(), limiter.acquire(), limiter.acquire()] == [0.0, 10.0, 20.0]
    assert waits == [10.0, 20.0]


@pytest.mark.parametrize(
    ("method", "idempotent", "repeatable"),
    [
        ("GET", None, True),
        ("get", False, True),
        ("POST", None, False),
        ("PUT", None, False),
        ("DELETE", False, False),
        ("POST", True, True),
        ("DELETE", True, True),
    ],
)
def test_request_is_repeatable_only_for_get_or_when_declared_idempotent(
    method, idempotent, repeatable
):
    payload = {"api": "app", "method": method, "path": "/v1/segments", "query": {"a": [1, True]}}
    if idempotent is not None:
        payload["idempotent"] = idempotent
    request = kinds.get("request").first_request(payload, None, "track")
    assert request.repeatable is repeatable
    assert request.method == method.upper() and request.params == (("a", "1"), ("a", "true"))
    seen = []
    kinds.get("request").execute(
        payload, None, "track", lambda r: seen.append(r) or kinds.Response(200, {"ok": 1})
    )
    assert [r.repeatable for r in seen] == [repeatable]


@pytest.fixture
def lossy_server(request):
    """A local server that reads each request, then answers as told (or closes the line)."""
    return request.getfixturevalue("lossy_server_fixture")


LOST = {
    "trigger_broadcast": "trigger_broadcast: {broadcast_id: 1, ids: [u1]}",
    "send_in_app": "send_in_app: {transactional_message_id: 8, identifiers: {id: u1}}",
    "send_inbox": "send_inbox: {transactional_message_id: 9, identifiers: {id: u1}}",
    "create_segment": "create_segment: {name: Beta}",
    "request POST": "request: {api: app, method: POST, path: /v1/campaigns/1/triggers, body: {}}",
}


@pytest.mark.parametrize("step", LOST.values(), ids=LOST.keys())
@pytest.mark.usefixtures("quick_backoff")
def test_a_write_whose_answer_is_lost_is_unknown_and_not_resent_on_resume(
    step, lossy_server, write_flow
):
    fault_server = lossy_server
    flow = write_flow(f"version: 1\nname: lost\nsteps:\n  - {step}\n")
    env = env_for(fault_server.url)
    fault_server.answer = lambda path: CLOSE
    first = run_cli(str(flow), env=env)
    run_id = run_id_of(first.output)
    assert first.exit_code == 4, first.output
    assert len(fault_server.bodies) == 1  # no id to deduplicate on: never retried
    [(_, status, attempts, error)] = journal_outcomes(run_id)
    assert (status, attempts) == ("unknown", 1) and "closed mid-answer" in error

    fault_server.answer = lambda path: (200, {}, {"id": 1})
    resumed = run_cli(str(flow), "--resume", run_id, env=env)
    assert len(fault_server.bodies) == 1, resumed.output  # resume does not send it again
    assert "--resend-unknown" in resumed.output


@pytest.mark.usefixtures("quick_backoff")
def test_an_idempotent_request_whose_answer_is_lost_is_retried_and_resent(lossy_server, write_flow):
    fault_server = lossy_server
    step = "request: {api: track, method: PUT, path: /api/v1/customers/u1, body: {a: 1}, idempotent: true}"
    flow = write_flow(f"version: 1\nname: lost\nsteps:\n  - {step}\n")
    env = env_for(fault_server.url)
    fault_server.answer = lambda path: CLOSE
    first = run_cli(str(flow), env=env)
    tries = len(fault_server.bodies)
    assert tries > 1, first.output  # safe to repeat: retried within the run
    [(_, status, _, _)] = journal_outcomes(run_id_of(first.output))
    assert status == "failed"
    fault_server.answer = lambda path: (200, {}, {})
    resumed = run_cli(str(flow), "--resume", run_id_of(first.output), env=env)
    assert resumed.exit_code == 0, resumed.output
    assert len(fault_server.bodies) == tries + 1


# ------------------------------------------------------------------ against the emulator


@pytest.fixture(scope="module")
def emulator():
    with Emulator(delivery={"sent": 0.05, "delivered": 0.3, "trigger": 0.05}) as emu:
        yield emu


EMULATED = """\
version: 1
name: emulated
vars:
  who: "kinds_{{ run.id }}"
steps:
  - identify: {userId: "{{ who }}", traits: {email: "{{ who }}@example.com"}}
  - send_email: {transactional_message_id: 1, to: "{{ who }}@example.com", identifiers: {id: "{{ who }}"}}
    save: sent
    loop: [1, 2, 3]
  - get_message: {id: "{{ steps.sent[0].delivery_id }}"}
    expect:
      - response.id == steps.sent[0].delivery_id and response.type == "email"
      - response.metrics.created > 0 and response.metrics.delivered is none
  - get_message: {id: "{{ steps.sent[0].delivery_id }}"}
    wait_until: {condition: response.metrics.delivered is not none, timeout: 10, interval: 0.1}
    expect: response.metrics.delivered >= response.metrics.sent
  - person_messages: {id: "{{ who }}", page_size: 1}
    expect: response.count == 3 and response.messages | map(attribute="id") | list == steps.sent | map(attribute="delivery_id") | reverse | list
  - person_messages: {id: "{{ who }}@example.com", id_type: email, page_size: 1, limit: 2}
    expect: response.count == 2
  - person_activities: {id: "{{ who }}", type: sent_email, page_size: 1}
    expect: response.count == 3
  - create_segment: {name: "kinds {{ run.id }}"}
    save: segment
    expect: response.id > 0 and response.type == "manual"
  - add_to_segment: {segment_id: "{{ steps.segment.id }}", ids: ["{{ who }}"]}
  - person_segments: {id: "{{ who }}"}
    expect: steps.segment.id in response.segments | map(attribute="id") | list
  - trigger_broadcast: {broadcast_id: 1, ids: ["{{ who }}", nobody_1, nobody_2, nobody_3]}
    save: trigger
    expect: response.id > 0 and response | length == 1
  - broadcast_status: {broadcast_id: 1, trigger_id: "{{ steps.trigger.id }}"}
    wait_until: {condition: response.processed_at is not none, timeout: 10, interval: 0.1}
  - broadcast_errors: {broadcast_id: 1, trigger_id: "{{ steps.trigger.id }}", page_size: 2}
    expect: 'response.count == 3 and response.errors[2].startswith("line 3:")'
  - list_messages: {broadcast_id: 1, page_size: 1}
    expect: response.count == 1 and response.messages[0].customer_id == who
finally:
  - delete_segment: {segment_id: "{{ steps.segment.id }}"}
    when: steps.segment is defined
  - delete: {userId: "{{ who }}"}
"""


def test_answers_are_unwrapped_paged_and_null_filled_on_the_emulator(emulator, write_flow):
    events: list[StepFinished] = []
    summary = run_flow(
        write_flow(EMULATED),
        options_for_emulator(emulator, RunOptions(environ={})),
        [lambda e: isinstance(e, StepFinished) and events.append(e)],
    )
    assert summary.ok, [e.error for e in events if e.error]
    paths = [r["path"] for r in emulator.inspect.requests("app") if "/errors" in r["path"]]
    assert len(paths) == 2  # three errors, two per page
    names = {segment["name"] for segment in emulator.inspect.segments()}
    assert f"kinds {summary.run_id}" not in names  # deleted in finally
    assert not re.search("kinds_", json.dumps(emulator.inspect.people()))
