"""What reaches a server: each family's auth scheme, and bodies that match the published schemas.

The wire schemas in cio_flows/schemas/wire/ are derived from Customer.io's OpenAPI specs (Track,
Pipelines) and API reference (App); the tests check every request the step kinds send against them.
"""

from __future__ import annotations

import base64
import json
import re
from functools import cache

import pytest
from click.testing import CliRunner
from conftest import FLOWS, SECRETS, env_for
from jsonschema import Draft202012Validator

from cio_flows import RunOptions, run_flow
from cio_flows.cli import main
from cio_flows.flow.schemas import load_schema


@cache
def wire_index() -> list[tuple[str, str, re.Pattern[str], dict]]:
    entries = []
    for key, files in load_schema("wire/index.json").items():
        if key.startswith("$"):
            continue
        method, family, template = key.split(" ", 2)
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        entries.append((method, family, pattern, files))
    return entries


def wire_entry(method: str, path: str) -> tuple[str, dict]:
    matches = [(f, files) for m, f, p, files in wire_index() if m == method and p.match(path)]
    assert matches, f"no wire schema for {method} {path}"
    # Pipelines and App share /v1: the more specific (longest) template wins.
    return matches[0]


def family_auth(family: str) -> str:
    user, password = {
        "pipelines": (SECRETS["CUSTOMERIO_PIPELINES_KEY"], ""),
        "track": (SECRETS["CUSTOMERIO_SITE_ID"], SECRETS["CUSTOMERIO_TRACK_TOKEN"]),
    }.get(family, (None, None))
    if user is None:
        return f"Bearer {SECRETS['CUSTOMERIO_APP_TOKEN']}"
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def check_requests(recorded) -> set[str]:
    seen = set()
    for request in recorded:
        path = request.path.split("?")[0]
        family, files = wire_entry(request.method, path)
        assert request.headers["Authorization"] == family_auth(family), (request.method, path)
        if request.body is not None:
            schema = load_schema(files["request"])
            errors = list(Draft202012Validator(schema).iter_errors(request.body))
            assert not errors, (path, [e.message for e in errors])
        seen.add(f"{request.method} {family} {path}")
    return seen


@pytest.mark.parametrize("pipelines", [True, False], ids=["pipelines", "track-only"])
def test_every_step_kind_sends_conforming_requests(pipelines, recording_server, write_flow):
    flow = write_flow(
        (FLOWS / "onboarding.yaml").read_text()
        + "  - send_push: {transactional_message_id: 3, identifiers: {email: a@example.com}}\n"
        + "  - send_sms: {transactional_message_id: 4, identifiers: {cio_id: abc}, to: '+15550100'}\n"
        + "  - list_segments:\n"
        + "  - segment_members: {segment_id: 7}\n"
        + "  - track: {anonymousId: anon-1, event: viewed, properties: {page: home}}\n"
    )
    extra = {} if pipelines else {"CUSTOMERIO_PIPELINES_KEY": ""}
    summary = run_flow(flow, RunOptions(environ=env_for(recording_server.url, **extra)))
    assert summary.ok, summary
    seen = check_requests(recording_server.requests)
    people = "pipelines" if pipelines else "track"
    assert any(s.startswith(f"POST {people}") or s.startswith(f"PUT {people}") for s in seen)
    assert {"POST app /v1/send/email", "POST app /v1/send/push", "POST app /v1/send/sms"} <= seen
    assert "POST app /v1/customers" in seen and "GET app /v1/segments" in seen


def test_track_mapping_follows_the_contract(recording_server, write_flow):
    flow = write_flow(
        "version: 1\nname: m\nsteps:\n"
        "  - identify: {userId: 'a+b@x.com', traits: {email: 'a+b@x.com', createdAt: '2024-01-01T00:00:00Z', plan: pro}}\n"
        "  - track: {userId: u1, event: upgraded, properties: {mrr: 49}, timestamp: '2024-01-01T00:00:00Z'}\n"
        "  - delete: {userId: u1}\n"
    )
    env = env_for(recording_server.url, CUSTOMERIO_PIPELINES_KEY="")
    assert run_flow(flow, RunOptions(environ=env, run_id="fixed")).ok
    put, event, delete = recording_server.requests
    assert (put.method, put.path) == ("PUT", "/api/v1/customers/a%2Bb%40x.com")
    assert put.body == {"email": "a+b@x.com", "created_at": 1704067200, "plan": "pro"}
    assert (event.method, event.path) == ("POST", "/api/v1/customers/u1/events")
    assert event.body["name"] == "upgraded" and event.body["data"] == {"mrr": 49}
    assert event.body["timestamp"] == 1704067200 and re.fullmatch(
        r"[0-9A-HJKMNP-TV-Z]{26}", event.body["id"]
    )
    assert (delete.method, delete.path, delete.body) == ("DELETE", "/api/v1/customers/u1", None)


def test_pipelines_delete_is_the_user_deleted_event(recording_server, write_flow):
    flow = write_flow("version: 1\nname: m\nsteps:\n  - delete: {userId: u1}\n")
    assert run_flow(flow, RunOptions(environ=env_for(recording_server.url))).ok
    (request,) = recording_server.requests
    assert request.path == "/v1/track"
    assert request.body["event"] == "User Deleted" and request.body["userId"] == "u1"
    assert request.body["messageId"]


def test_message_ids_are_stable_for_the_same_run_row_and_step(recording_server, write_flow):
    flow = write_flow("version: 1\nname: m\nsteps:\n  - track: {userId: u1, event: e}\n")
    for _ in range(2):
        run_flow(flow, RunOptions(environ=env_for(recording_server.url), run_id="run-1"))
    run_flow(flow, RunOptions(environ=env_for(recording_server.url), run_id="run-2"))
    ids = [r.body["messageId"] for r in recording_server.requests]
    assert ids[0] == ids[1] != ids[2]


def test_search_follows_every_page(recording_server, write_flow):
    pages = {"": ("c1", ["u1", "u2"]), "c1": ("c2", ["u3"]), "c2": ("", ["u4"])}

    def answer(request):
        start = dict(re.findall(r"(\w+)=([^&]*)", request.path.split("?", 1)[1])).get("start", "")
        cursor, ids = pages[start]
        identifiers = [{"id": i, "email": f"{i}@x.com", "cio_id": i} for i in ids]
        return 200, {}, {"identifiers": identifiers, "ids": ids, "next": cursor}

    recording_server.handler = answer
    flow = write_flow(
        "version: 1\nname: m\nsteps:\n"
        "  - search: {filter: {segment: {id: 1}}, limit: 2}\n    save: all\n"
        "  - get_person: {id: '{{ steps.all.ids[-1] }}'}\n"
    )
    assert run_flow(flow, RunOptions(environ=env_for(recording_server.url))).ok
    assert [r.path.split("?")[0] for r in recording_server.requests] == [
        "/v1/customers",
        "/v1/customers",
        "/v1/customers",
        "/v1/customers/u4/attributes",
    ]


def test_plan_in_eu_shows_eu_hosts_and_no_keys(write_flow):
    flow = write_flow((FLOWS / "onboarding.yaml").read_text())
    for env in (SECRETS, {**SECRETS, "CUSTOMERIO_PIPELINES_KEY": ""}):
        result = CliRunner().invoke(main, ["plan", str(flow), "--region", "eu"], env=env)
        assert result.exit_code == 0, result.output
        hosts = set(re.findall(r"https://([a-z-]+\.customer\.io)", result.output))
        expected = {
            "api-eu.customer.io",
            "cdp-eu.customer.io" if env is SECRETS else "track-eu.customer.io",
        }
        assert hosts == expected
        for secret in SECRETS.values():
            if secret != SECRETS["CUSTOMERIO_SITE_ID"]:
                assert secret not in result.output
        assert "Basic " not in result.output.replace("HTTP Basic", "")


def test_plan_json_lists_every_family_in_eu(write_flow):
    flow = write_flow(
        "version: 1\nname: m\nsteps:\n  - identify: {userId: u}\n  - list_segments:\n"
    )
    env = {**SECRETS, "CUSTOMERIO_PIPELINES_KEY": ""}
    out = CliRunner().invoke(
        main, ["plan", str(flow), "--region", "eu", "--format", "json"], env=env
    )
    urls = [json.loads(line)["url"] for line in out.output.splitlines()]
    assert urls == [
        "https://track-eu.customer.io/api/v1/customers/u",
        "https://api-eu.customer.io/v1/segments",
    ]
