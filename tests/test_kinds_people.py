"""The people writes beyond identify/track/delete: page, screen, group, delete_object,
delete_relationship, alias, add_device, delete_device, suppress, unsuppress.

Each goes to Pipelines when its key is set and to Track otherwise; every request validates
against the wire schemas for its path, and `--data` runs share the batch endpoints."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from click.testing import CliRunner
from conftest import ROOT, SECRETS, env_for
from jsonschema import Draft202012Validator
from test_wire import check_requests, wire_entry

from cio_flows import RunOptions, run_flow
from cio_flows.api import options_for_emulator
from cio_flows.cli import main
from cio_flows.emulator import Emulator
from cio_flows.flow.schemas import load_schema
from cio_flows.run.events import StepFinished
from cio_flows.wire import kinds

NEW_KINDS = (
    "page",
    "screen",
    "group",
    "delete_object",
    "delete_relationship",
    "alias",
    "add_device",
    "delete_device",
    "suppress",
    "unsuppress",
)

EVERY_KIND = """\
version: 1
name: people_kinds
steps:
  - page:
      userId: u1
      name: Pricing
      properties: {url: "https://example.com/pricing", plan: pro}
      timestamp: "2024-01-01T00:00:00Z"
  - screen: {userId: u1, name: Settings, properties: {tab: billing}}
  - page: {anonymousId: anon-1, name: Home}
  - group:
      userId: u1
      groupId: acme
      traits: {name: Acme, seats: 12, object_type_id: 2, relationshipAttributes: {role: admin}}
  - delete_relationship: {userId: u1, groupId: acme, objectTypeId: 2}
  - delete_object: {groupId: acme, objectTypeId: "2"}
  - alias: {userId: u1, previousId: 42}
  - add_device: {userId: u1, device: {token: "tok/1", type: ios, attributes: {app_version: "2.1"}}}
  - delete_device: {userId: u1, device: {token: "tok/1"}}
  - suppress: {userId: "a+b@x.com"}
  - unsuppress: {userId: "a+b@x.com"}
"""

TRACK_ONLY = {"CUSTOMERIO_PIPELINES_KEY": ""}


def test_every_kind_is_registered_as_a_batchable_people_write():
    for name in NEW_KINDS:
        kind = kinds.get(name)
        assert kind.family == kinds.PEOPLE and kind.repeatable and not kind.reads
        assert kind.batch is not None, name


def test_every_kind_on_pipelines_sends_conforming_calls(recording_server, write_flow):
    flow = write_flow(EVERY_KIND)
    assert run_flow(flow, RunOptions(environ=env_for(recording_server.url))).ok
    requests = recording_server.requests
    assert check_requests(requests) == {
        "POST pipelines /v1/page",
        "POST pipelines /v1/screen",
        "POST pipelines /v1/group",
        "POST pipelines /v1/track",
        "POST pipelines /v1/alias",
    }
    assert [r.body.get("event") for r in requests if r.path == "/v1/track"] == [
        "Relationship Deleted",
        "Object Deleted",
        "Device Created or Updated",
        "Device Deleted",
        "User Suppressed",
        "User Unsuppressed",
    ]
    assert len({r.body["messageId"] for r in requests}) == len(requests) == 11
    page, screen, anonymous, group, unrelate, drop, alias, device, undevice, *_ = requests
    assert page.body["timestamp"] == "2024-01-01T00:00:00Z"
    assert (screen.body["name"], screen.body["properties"]) == ("Settings", {"tab": "billing"})
    assert page.body["properties"] == {"url": "https://example.com/pricing", "plan": "pro"}
    assert anonymous.body["anonymousId"] == "anon-1" and "userId" not in anonymous.body
    assert group.body["traits"]["object_type_id"] == "2"  # Pipelines wants a string
    assert unrelate.body["properties"] == {"objectId": "acme", "objectTypeId": 2}
    assert drop.body["properties"] == {"objectId": "acme", "objectTypeId": 2}
    assert drop.body["anonymousId"]  # the spec requires one on Object Deleted
    assert (alias.body["userId"], alias.body["previousId"]) == ("u1", "42")
    assert device.body["context"] == {"device": {"token": "tok/1", "type": "ios"}}
    assert device.body["properties"] == {"app_version": "2.1"}
    assert undevice.body["context"] == {"device": {"token": "tok/1"}}


def test_every_kind_on_track_follows_the_contract(recording_server, write_flow):
    flow = write_flow(EVERY_KIND)
    env = env_for(recording_server.url, **TRACK_ONLY)
    assert run_flow(flow, RunOptions(environ=env)).ok
    requests = recording_server.requests
    assert check_requests(requests) == {
        "POST track /api/v2/entity",
        "POST track /api/v1/events",
        "POST track /api/v1/merge_customers",
        "PUT track /api/v1/customers/u1/devices",
        "DELETE track /api/v1/customers/u1/devices/tok%2F1",
        "POST track /api/v1/customers/a%2Bb%40x.com/suppress",
        "POST track /api/v1/customers/a%2Bb%40x.com/unsuppress",
    }
    page, screen, anonymous, group, unrelate, drop, merge, device, *_ = requests
    assert page.body == {
        "type": "person",
        "identifiers": {"id": "u1"},
        "action": "page",
        "name": "Pricing",
        "id": page.body["id"],
        "timestamp": 1704067200,
        "attributes": {"url": "https://example.com/pricing", "plan": "pro"},
    }
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", page.body["id"])  # Track dedupes on it
    assert (screen.body["action"], screen.body["name"]) == ("screen", "Settings")
    assert anonymous.body["anonymous_id"] == "anon-1" and anonymous.body["type"] == "page"
    assert group.body == {
        "type": "object",
        "identifiers": {"object_type_id": "2", "object_id": "acme"},
        "action": "identify",
        "attributes": {"name": "Acme", "seats": 12},
        "cio_relationships": [
            {"identifiers": {"id": "u1"}, "relationship_attributes": {"role": "admin"}}
        ],
    }
    assert unrelate.body["action"] == "delete_relationships"
    assert unrelate.body["cio_relationships"] == [
        {"identifiers": {"object_type_id": "2", "object_id": "acme"}}
    ]
    assert (drop.body["type"], drop.body["action"]) == ("object", "delete")
    assert merge.body == {"primary": {"id": "u1"}, "secondary": {"id": "42"}}
    assert device.body == {
        "device": {"id": "tok/1", "platform": "ios", "attributes": {"app_version": "2.1"}}
    }


def test_resending_gives_the_same_dedupe_ids(recording_server, write_flow):
    flow = write_flow(EVERY_KIND)
    for env in (env_for(recording_server.url), env_for(recording_server.url, **TRACK_ONLY)):
        for _ in range(2):
            run_flow(flow, RunOptions(environ=env, run_id="same-run"))
    first, second, third, fourth = (
        recording_server.requests[i * 11 : (i + 1) * 11] for i in range(4)
    )
    assert [r.body for r in first] == [r.body for r in second]
    assert [r.body for r in third] == [r.body for r in fourth]


# ------------------------------------------------------------------ refused before sending


def test_a_device_attribute_track_cannot_hold_is_refused_before_sending(
    recording_server, write_flow
):
    flow = write_flow(
        "version: 1\nname: d\nsteps:\n"
        "  - add_device:\n"
        "      userId: u1\n"
        "      device: {token: t1, type: ios, attributes: {build: 212}}\n"
    )
    env = env_for(recording_server.url, **TRACK_ONLY)
    result = CliRunner().invoke(main, ["run", str(flow)], env=env)
    assert result.exit_code == 2, result.output
    assert (
        f"{flow}:6:58: step 'add_device #1': invalid field 'device.attributes.build'"
        " (expected string, found number 212)"
    ) in result.output
    assert recording_server.requests == []


def test_group_with_only_an_anonymous_id_on_track_names_the_pipelines_key(
    recording_server, write_flow
):
    flow = write_flow("version: 1\nname: g\nsteps:\n  - group: {anonymousId: a1, groupId: acme}\n")
    env = env_for(recording_server.url, **TRACK_ONLY)
    result = CliRunner().invoke(main, ["run", str(flow)], env=env)
    assert result.exit_code == 2, result.output
    assert "CUSTOMERIO_PIPELINES_KEY" in result.output
    assert recording_server.requests == []


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_without_people_keys_exit_2_naming_the_variables(kind, recording_server, write_flow):
    payload = {
        "page": "{userId: u1, name: p}",
        "screen": "{userId: u1, name: s}",
        "group": "{userId: u1, groupId: g}",
        "delete_object": "{groupId: g}",
        "delete_relationship": "{userId: u1, groupId: g}",
        "alias": "{userId: u1, previousId: u2}",
        "add_device": "{userId: u1, device: {token: t, type: android}}",
        "delete_device": "{userId: u1, device: {token: t}}",
        "suppress": "{userId: u1}",
        "unsuppress": "{userId: u1}",
    }[kind]
    flow = write_flow(f"version: 1\nname: k\nsteps:\n  - list_segments:\n  - {kind}: {payload}\n")
    env = {
        "CUSTOMERIO_APP_TOKEN": SECRETS["CUSTOMERIO_APP_TOKEN"],
        "CUSTOMERIO_APP_URL": recording_server.url,
        "CUSTOMERIO_TRACK_URL": recording_server.url,
        "CUSTOMERIO_PIPELINES_URL": recording_server.url,
    }
    result = CliRunner().invoke(main, ["run", str(flow)], env=env)
    assert result.exit_code == 2, result.output
    assert "CUSTOMERIO_SITE_ID" in result.output and "CUSTOMERIO_TRACK_TOKEN" in result.output
    assert recording_server.requests == []


# ------------------------------------------------------------------ batched --data runs

BATCHED = """\
version: 1
name: batched_people
for_each: {file: rows.csv, key: "{{ row.id }}"}
steps:
  - page: {userId: "{{ row.id }}", name: Pricing, properties: {url: "https://example.com/p"}}
  - screen: {userId: "{{ row.id }}", name: Settings}
  - group:
      userId: "{{ row.id }}"
      groupId: "acct_{{ row.account }}"
      traits: {name: "Account {{ row.account }}", relationshipAttributes: {role: member}}
  - add_device: {userId: "{{ row.id }}", device: {token: "tok_{{ row.id }}", type: android}}
"""
ROWS = [(f"bp{i}", i % 2) for i in range(1, 6)]


def write_batched(tmp_path, write_flow):
    lines = ["id,account"] + [f"{uid},{account}" for uid, account in ROWS]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    return write_flow(BATCHED)


@pytest.mark.parametrize("track_only", [False, True], ids=["pipelines", "track"])
def test_batched_rows_share_batch_calls_that_conform(
    track_only, tmp_path, write_flow, recording_server
):
    flow = write_batched(tmp_path, write_flow)
    env = env_for(recording_server.url, **(TRACK_ONLY if track_only else {}))
    summary = run_flow(flow, RunOptions(environ=env, batch=True))
    assert summary.ok and summary.rows == len(ROWS)
    path = "/api/v2/batch" if track_only else "/v1/batch"
    assert {r.path for r in recording_server.requests} == {path}
    check_requests(recording_server.requests)
    items = [item for r in recording_server.requests for item in r.body["batch"]]
    assert len(items) == 4 * len(ROWS)
    if track_only:
        kinds_sent = {(i["type"], i["action"]) for i in items}
        expected = {("person", "page"), ("person", "screen"), ("object", "identify")}
        assert kinds_sent == expected | {("person", "add_device")}
    else:
        assert {i["type"] for i in items} == {"page", "screen", "group", "track"}


@pytest.fixture(scope="module")
def emulator():
    with Emulator() as emu:
        yield emu


def check_logged_requests(logged: list[dict]) -> None:
    for entry in logged:
        path = entry["path"].split("?")[0]
        _, files = wire_entry(entry["method"], path)
        if entry["body"] is not None:
            schema = load_schema(files["request"])
            errors = [e.message for e in Draft202012Validator(schema).iter_errors(entry["body"])]
            assert not errors, (path, errors)


@pytest.mark.parametrize("track_only", [False, True], ids=["pipelines", "track"])
def test_batched_rows_are_delivered_once_to_the_emulator(
    track_only, tmp_path, write_flow, emulator
):
    emulator.reset()
    flow = write_batched(tmp_path, write_flow)
    options = options_for_emulator(emulator, RunOptions(environ={}, batch=True))
    if track_only:
        options = replace(options, environ={**options.environ, **TRACK_ONLY})
    summary = run_flow(flow, options)
    assert summary.ok, summary
    logged = emulator.inspect.requests()
    assert {e["path"] for e in logged} == {"/api/v2/batch" if track_only else "/v1/batch"}
    check_logged_requests(logged)
    ids = {uid for uid, _ in ROWS}
    views = [
        (e["type"], e["person"]["id"])
        for e in emulator.inspect.events()
        if e["person"] and e["person"]["id"] in ids
    ]
    assert sorted(views) == sorted([("page", u) for u in ids] + [("screen", u) for u in ids])
    accounts = {o["object_id"]: o for o in emulator.inspect.objects()}
    for account in ("0", "1"):
        members = {
            r["person"]["id"]: r["attributes"] for r in accounts[f"acct_{account}"]["relationships"]
        }
        assert members == {uid: {"role": "member"} for uid, a in ROWS if str(a) == account}
    tokens = {d["id"]: d["person"]["id"] for d in emulator.inspect.devices()}
    assert tokens == {f"tok_{uid}": uid for uid in ids}


# ------------------------------------------------------------------ scenarios, on both APIs

SCENARIOS = ROOT / "flows" / "scenarios"
MINE = ("push_to_device", "merge_duplicates", "account_object")


@pytest.mark.parametrize("track_only", [False, True], ids=["pipelines", "track"])
@pytest.mark.parametrize("name", MINE)
def test_scenario_passes_on_either_people_api_and_cleans_up(name, track_only, emulator):
    emulator.reset()
    options = options_for_emulator(emulator, RunOptions(environ={}))
    if track_only:
        options = replace(options, environ={**options.environ, **TRACK_ONLY})
    before = {p["id"] for p in emulator.inspect.people()}
    summary = run_flow(SCENARIOS / f"{name}.yaml", options)
    assert summary.ok, summary
    assert {p["id"] for p in emulator.inspect.people()} - before == set()
    family = "track" if track_only else "pipelines"
    people_calls = [e for e in emulator.inspect.requests() if e["family"] in ("track", "pipelines")]
    assert people_calls and {e["family"] for e in people_calls} == {family}
    check_logged_requests(people_calls)


def test_account_scenario_relates_the_person_with_the_role_then_removes_all(emulator):
    """The App API has no read for relationships in the emulator: check its state mid-run."""
    emulator.reset()
    seen: dict[str, list] = {}

    def watch(event) -> None:
        if isinstance(event, StepFinished) and event.status == "ok":
            seen[event.step.name] = [
                (
                    o["object_id"],
                    o["attributes"],
                    [(r["person"]["id"], r["attributes"]) for r in o["relationships"]],
                )
                for o in emulator.inspect.objects()
            ]

    options = options_for_emulator(emulator, RunOptions(environ={}, run_id="acct-check"))
    assert run_flow(SCENARIOS / "account_object.yaml", options, [watch]).ok
    account, user = "acct_acct-check", "acct_user_acct-check"
    assert seen["joins the account as admin"] == [
        (account, {"name": "Acme acct-check", "plan": "enterprise"}, [(user, {"role": "admin"})])
    ]
    assert seen["leaves the account"] == [
        (account, {"name": "Acme acct-check", "plan": "enterprise"}, [])
    ]
    assert seen["delete the account"] == []
