"""One registry each for step kinds and API families, and the documents generated from them:
the flow schema's step keys, the step schema files and the README's table agree with the registry,
and a kind added as one module plus its schema file runs in a flow with nothing else changed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import ROOT, SECRETS, default_answer, env_for
from jsonschema import Draft202012Validator

import cio_flows
from cio_flows import RunOptions, run_flow
from cio_flows.errors import FlowSchemaError, PayloadError
from cio_flows.flow.loader import load_flow
from cio_flows.flow.schemas import FLOW_SCHEMA, load_schema, step_kind_properties
from cio_flows.wire import kinds
from cio_flows.wire.config import Credentials, Endpoints
from cio_flows.wire.docs import END, START, step_kinds_table, with_table
from cio_flows.wire.families import FAMILIES, default_rates, family_spec
from cio_flows.wire.kinds import StepKind
from cio_flows.wire.sessions import auth_description
from cio_flows.wire.types import Request, SingleRequest

SCHEMAS = Path(cio_flows.__file__).parent / "schemas"
STEP_OPTIONS = {"name", "save", "when", "expect", "wait_until", "loop", "expect_status", "validate"}
STEP_OPTIONS.add("once")
# `use` (with its `with`) is a flow-format construct the loader expands, not an API call.
FLOW_CONSTRUCTS = {"use", "with"}


# ------------------------------------------------------------------ the documents agree


def test_flow_schema_lists_exactly_the_registered_kinds_with_their_descriptions():
    shipped = load_schema(FLOW_SCHEMA)["$defs"]["step"]["properties"]
    in_file = {
        key: value
        for key, value in shipped.items()
        if key not in STEP_OPTIONS and key not in FLOW_CONSTRUCTS
    }
    assert not FLOW_CONSTRUCTS & set(kinds.names()), "use is expanded by the loader, not sent"
    expected = step_kind_properties()
    missing = [name for name in expected if in_file.get(name) != expected[name]]
    lines = "\n".join(f"{json.dumps(n)}: {json.dumps(expected[n])}," for n in missing)
    assert not missing, f"schemas/flow.schema.json, $defs.step.properties, should say:\n{lines}"
    assert set(in_file) == set(expected), "flow.schema.json lists kinds nobody registered"


def test_every_step_schema_file_has_a_kind_and_every_kind_a_schema():
    files = {path.stem for path in (SCHEMAS / "steps").glob("*.json")}
    shipped = {kind.name for kind in kinds.all_kinds() if not kind.schema}
    assert files == shipped
    for kind in kinds.all_kinds():
        Draft202012Validator.check_schema(kind.payload_schema)
        assert kind.payload_schema.get("title") == f"{kind.name} step payload"


def test_readme_has_the_generated_step_kind_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(START) == 1 and readme.count(END) == 1
    between = readme[readme.index(START) + len(START) : readme.index(END)]
    assert between == "\n" + step_kinds_table(), (
        "README's step-kind table is stale: run python -m cio_flows.wire.docs README.md"
    )
    assert with_table(readme) == readme


def test_table_has_one_row_per_kind_with_family_and_keys():
    rows = step_kinds_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [
        "identify", "track", "delete", "add_device", "delete_device", "alias", "suppress",
        "unsuppress", "group", "delete_object", "delete_relationship", "page", "screen",
        "send_email", "send_push", "send_sms", "send_in_app", "send_inbox", "trigger_broadcast",
        "request", "add_to_segment", "remove_from_segment", "create_segment", "delete_segment",
        "send_whatsapp", "search", "get_person", "list_segments", "segment_members", "broadcast_status",
        "broadcast_errors", "get_message", "list_messages", "person_messages",
        "person_activities", "person_segments",
    ]  # fmt: skip
    identify = rows[0]
    assert "| pipelines, else track |" in identify
    assert (
        "`CUSTOMERIO_PIPELINES_KEY`, or `CUSTOMERIO_SITE_ID` + `CUSTOMERIO_TRACK_TOKEN`" in identify
    )
    get_person = next(row for row in rows if "`get_person`" in row)
    assert "(id \\| email \\| cio_id)" in get_person  # a pipe would end the cell
    assert get_person.endswith("| app | `CUSTOMERIO_APP_TOKEN` |")


def test_with_table_needs_both_markers():
    with pytest.raises(ValueError, match="step-kinds:start"):
        with_table("no markers here")


# ------------------------------------------------------------------ what the kinds declare


def test_kind_properties_are_those_the_runner_relied_on():
    assert kinds.reading_kinds() == {
        "search", "get_person", "list_segments", "segment_members", "broadcast_status",
        "broadcast_errors", "get_message", "list_messages", "person_messages",
        "person_activities", "person_segments",
    }  # fmt: skip
    not_repeatable = {kind.name for kind in kinds.all_kinds() if not kind.repeatable}
    assert not_repeatable == {
        "send_email", "send_push", "send_sms", "send_in_app", "send_inbox", "trigger_broadcast",
        "create_segment", "send_whatsapp",
    }  # fmt: skip
    people = {kind.name for kind in kinds.all_kinds() if kind.family == kinds.PEOPLE}
    assert people == {
        "identify", "track", "delete", "add_device", "delete_device", "alias", "suppress",
        "unsuppress", "group", "delete_object", "delete_relationship", "page", "screen",
    }  # fmt: skip
    assert kinds.get("track").family_for("pipelines") == "pipelines"
    assert kinds.get("track").family_for("track") == "track"
    assert kinds.get("search").family_for("pipelines") == "app"


def test_a_kind_that_is_not_repeatable_marks_every_request_it_sends():
    send = kinds.get("send_email")
    payload = {"transactional_message_id": "w", "to": "a@b.c", "identifiers": {"id": "u"}}
    assert send.first_request(payload, None, "track").repeatable is False
    sent: list[Request] = []

    def record(request: Request):
        sent.append(request)
        return cio_flows.wire.types.Response(200, {"delivery_id": "d"})

    assert send.execute(payload, None, "track", record) == {"delivery_id": "d"}
    assert [r.repeatable for r in sent] == [False]
    assert sent[0].rate_bucket == "app_send"
    assert kinds.get("list_segments").first_request({}, None, "track").repeatable is True


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown step kind 'idenify'; known: identify, track"):
        kinds.get("idenify")


def test_a_kind_declared_twice_is_an_error_naming_both_modules():
    twin = StepKind("identify", "Again.", Echo(), family="app")
    with pytest.raises(
        ValueError, match=r"declared twice: in cio_flows\.wire\.kinds\.people and in"
    ):
        kinds.register(twin)
    assert kinds.get("identify").family == kinds.PEOPLE


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Ping"}, "lower_snake_case"),
        ({"family": "cdp"}, "family 'cdp' is not one of track, pipelines, app, people"),
        ({"description": " "}, "has no description"),
    ],
)
def test_a_malformed_kind_is_refused(fields, message):
    declared = {"name": "ping", "description": "Ping.", "operation": Echo(), "family": "app"}
    with pytest.raises(ValueError, match=message):
        StepKind(**{**declared, **fields})


# ------------------------------------------------------------------ the families


def test_families_declare_keys_auth_hosts_and_limits_once():
    assert FAMILIES == ("track", "pipelines", "app")
    assert family_spec("track").credentials == ("CUSTOMERIO_SITE_ID", "CUSTOMERIO_TRACK_TOKEN")
    assert family_spec("pipelines").credentials == ("CUSTOMERIO_PIPELINES_KEY",)
    assert family_spec("app").credentials == ("CUSTOMERIO_APP_TOKEN",)
    assert auth_description("pipelines") == (
        "HTTP Basic, user CUSTOMERIO_PIPELINES_KEY, empty password"
    )
    assert auth_description("track") == (
        "HTTP Basic, user CUSTOMERIO_SITE_ID, password CUSTOMERIO_TRACK_TOKEN"
    )
    assert auth_description("app") == "Bearer CUSTOMERIO_APP_TOKEN"
    assert default_rates() == {
        "track": 100.0, "pipelines": 100.0, "app_send": 100.0, "app_broadcast": 0.1, "app": 10.0,
    }  # fmt: skip
    with pytest.raises(KeyError, match="unknown API family 'cdp'; known: track, pipelines, app"):
        family_spec("cdp")


def test_endpoints_and_credentials_come_from_the_families():
    eu = Endpoints.for_region("eu", {})
    assert (eu.pipelines, eu.track, eu.app) == (
        "https://cdp-eu.customer.io",
        "https://track-eu.customer.io",
        "https://api-eu.customer.io",
    )
    overridden = Endpoints.for_region("us", {"CUSTOMERIO_TRACK_URL": "http://127.0.0.1:9/"})
    assert overridden.track == "http://127.0.0.1:9"
    assert overridden.app == "https://api.customer.io"
    only_site = Credentials.from_env({"CUSTOMERIO_SITE_ID": "s"})
    assert only_site.missing_for("track") == ["CUSTOMERIO_TRACK_TOKEN"]
    assert only_site.people_family == "track"
    full = Credentials.from_env(SECRETS)
    assert full.people_family == "pipelines"
    assert [full.missing_for(f) for f in FAMILIES] == [[], [], []]
    assert full.value("CUSTOMERIO_APP_TOKEN") == SECRETS["CUSTOMERIO_APP_TOKEN"]


# ------------------------------------------------------------------ a kind added from outside

PING_MODULE = '''"""A tiny step kind, as a contributor adds one: this module and its schema file."""

from pathlib import Path

from cio_flows.wire.kinds.registry import StepKind, register
from cio_flows.wire.types import Request, SingleRequest


class Ping(SingleRequest):
    def first_request(self, payload, keys, people_family):
        return Request("app", "GET", "/v1/ping", params=(("message", payload["message"]),))

    def read(self, body):
        return {"echo": (body or {}).get("echo")}


register(
    StepKind(
        "ping",
        "Ask the App API to echo a message: message.",
        Ping(),
        family="app",
        reads=True,
        schema=Path(__file__).with_name("ping.json"),
    )
)
'''

PING_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ping step payload",
    "description": "A message to echo.",
    "type": "object",
    "required": ["message"],
    "additionalProperties": False,
    "properties": {"message": {"type": "string", "description": "What to echo."}},
}

PING_FLOW = """version: 1
name: ping
steps:
  - ping: {message: hello}
    save: pong
    expect: response.echo == "hello"
  - ping: {message: "{{ steps.pong.echo }} again"}
    wait_until: response.echo == "hello again"
"""


class Echo(SingleRequest):
    def first_request(self, payload, keys, people_family):
        return Request("app", "GET", "/v1/echo")


@pytest.fixture
def ping_kind(tmp_path, monkeypatch):
    """The ping module dropped into a folder on the kinds package's path, then discovered."""
    folder = tmp_path / "more_kinds"
    folder.mkdir()
    (folder / "ping_kind.py").write_text(PING_MODULE, encoding="utf-8")
    (folder / "ping.json").write_text(json.dumps(PING_SCHEMA), encoding="utf-8")
    monkeypatch.setattr(kinds, "__path__", [*kinds.__path__, str(folder)])
    kinds.discover()
    yield kinds.get("ping")
    kinds.unregister("ping")
    sys.modules.pop("cio_flows.wire.kinds.ping_kind", None)


def echo_ping(request):
    if request.path.startswith("/v1/ping"):
        message = parse_qs(urlsplit(request.path).query)["message"][0]
        return 200, {}, {"echo": message}
    return default_answer(request)


def test_a_kind_added_as_one_module_and_its_schema_runs_in_a_flow(
    ping_kind, recording_server, write_flow
):
    assert "ping" in kinds.names() and "ping" in kinds.reading_kinds()
    recording_server.handler = echo_ping
    flow = write_flow(PING_FLOW)
    summary = run_flow(flow, RunOptions(environ=env_for(recording_server.url)))
    assert summary.ok, summary
    assert [r.path for r in recording_server.requests] == [
        "/v1/ping?message=hello",
        "/v1/ping?message=hello+again",
    ]
    bearer = f"Bearer {SECRETS['CUSTOMERIO_APP_TOKEN']}"
    assert all(r.headers["Authorization"] == bearer for r in recording_server.requests)


def test_the_added_kinds_schema_checks_its_payloads(ping_kind, write_flow):
    flow = write_flow(PING_FLOW.replace("{message: hello}", "{mesage: hello}"))
    with pytest.raises(PayloadError) as caught:
        load_flow(flow)
    assert "unknown field 'mesage'" in str(caught.value)
    assert "did you mean 'message'?" in str(caught.value)
    assert f"{flow}:4:" in str(caught.value)


def test_an_unregistered_kind_is_unknown_again(ping_kind, write_flow):
    flow = write_flow(PING_FLOW)
    load_flow(flow)
    kinds.unregister("ping")
    with pytest.raises(FlowSchemaError, match="unknown step kind or option 'ping'"):
        load_flow(flow)
