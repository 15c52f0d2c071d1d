"""Suites: `use` (shared steps with `with`, `save`, `finally`), `tags`, negative checks
(`expect_status`, `validate: false`), and resume of a flow made of used steps."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FLOWS, env_for

from cio_flows import RunOptions, run_flow
from cio_flows.api import options_for_emulator
from cio_flows.cli import main
from cio_flows.emulator import Emulator
from cio_flows.errors import FlowInputError, FlowSchemaError, PayloadError, TemplateError
from cio_flows.flow.loader import load_flow
from cio_flows.run.events import StepFinished

PERSON = """\
version: 1
name: person
vars:
  user_id: "default_{{ run.id }}"
  plan: free
steps:
  - name: create
    identify: {userId: "{{ user_id }}", traits: {plan: "{{ plan }}"}}
    save: {name: pid, value: user_id}
finally:
  - name: remove
    delete: {userId: "{{ user_id }}"}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


@pytest.fixture(scope="module")
def emulator():
    with Emulator() as emu:
        yield emu


def run_events(flow: Path, options: RunOptions) -> tuple[int, list[StepFinished]]:
    events: list[StepFinished] = []
    summary = run_flow(flow, options, [lambda e: isinstance(e, StepFinished) and events.append(e)])
    return summary.exit_code, events


def test_use_runs_the_steps_with_its_vars_saves_and_finally_before_the_callers(tmp_path, emulator):
    write(tmp_path, "common/person.yaml", PERSON)
    flow = write(
        tmp_path,
        "main.yaml",
        "version: 1\nname: main\nvars: {me: 'use_{{ run.id }}'}\nsteps:\n"
        "  - name: alice\n    use: common/person.yaml\n"
        "    with: {user_id: '{{ me }}', plan: pro}\n    save: alice\n"
        "  - get_person: {id: '{{ steps.alice.pid }}'}\n"
        "    expect: [response.attributes.plan == 'pro', steps.alice.pid == me]\n"
        "finally:\n  - name: own cleanup\n    get_person: {id: '{{ me }}'}\n"
        "    expect_status: 404\n",
    )
    before = {p["id"] for p in emulator.inspect.people()}
    code, events = run_events(flow, options_for_emulator(emulator, RunOptions(environ={})))
    assert code == 0, [e.error for e in events]
    assert [(e.step.key, e.step.name, e.status) for e in events] == [
        ("steps.0/steps.0", "alice / create", "ok"),
        ("steps.1", "get_person #2", "ok"),
        ("steps.0/finally.0", "alice / remove", "ok"),  # the used flow's finally runs first
        ("finally.0", "own cleanup", "ok"),  # so the person is gone by then
    ]
    assert str(events[0].step.location) == (
        f"{tmp_path}/common/person.yaml:7:5 (used at {flow}:5:5)"
    )
    assert {p["id"] for p in emulator.inspect.people()} == before


def test_with_values_read_the_callers_earlier_saves(tmp_path, emulator):
    write(tmp_path, "common/person.yaml", PERSON)
    flow = write(
        tmp_path,
        "main.yaml",
        "version: 1\nname: main\nsteps:\n"
        "  - list_segments:\n    save: {name: n, value: response.segments | length}\n"
        "  - use: common/person.yaml\n"
        "    with: {user_id: 'seg{{ steps.n }}_{{ run.id }}'}\n    save: p\n"
        "  - get_person: {id: '{{ steps.p.pid }}'}\n    expect: response.attributes.plan == 'free'\n",
    )
    code, events = run_events(flow, options_for_emulator(emulator, RunOptions(environ={})))
    assert code == 0, [e.error for e in events]
    assert events[1].step.name == "use person / create"
    segments = events[0].saved
    assert events[1].saved.startswith(f"seg{segments}_"), "with read steps.n of the caller"
    assert [e.status for e in events] == ["ok"] * 4


def test_shared_scenarios_use_flows_common_and_each_common_flow_runs_alone(emulator):
    options = options_for_emulator(emulator, RunOptions(environ={}))
    for name in ("onboarding", "churn_winback", "password_reset", "plan_upgrade", "gdpr_delete"):
        text = (FLOWS / "scenarios" / f"{name}.yaml").read_text()
        assert "use: ../common/create_person.yaml" in text, name
    for common in sorted((FLOWS / "common").glob("*.yaml")):
        code, events = run_events(common, options)
        assert code == 0, (common, [e.error for e in events])


def test_a_cycle_of_use_exits_2_naming_both_files(tmp_path):
    a = write(tmp_path, "a.yaml", "version: 1\nname: a\nsteps:\n  - use: b.yaml\n")
    b = write(tmp_path, "b.yaml", "version: 1\nname: b\nsteps:\n  - use: a.yaml\n")
    result = CliRunner().invoke(main, ["validate", str(a)], env={})
    assert result.exit_code == 2, result.output
    assert "a cycle of use" in result.output
    assert f"{b}:4:10 (used at {a}:4:5)" in result.output
    self_use = write(tmp_path, "self.yaml", "version: 1\nname: s\nsteps:\n  - use: self.yaml\n")
    with pytest.raises(FlowSchemaError, match="a cycle of use"):
        load_flow(self_use)


def test_an_error_inside_a_used_file_names_its_line_and_the_using_line(tmp_path, emulator):
    used = write(
        tmp_path,
        "common/bad.yaml",
        "version: 1\nname: bad\nsteps:\n  - identify: {userId: u, traitz: {}}\n",
    )
    flow = write(tmp_path, "main.yaml", "version: 1\nname: m\nsteps:\n  - use: common/bad.yaml\n")
    with pytest.raises(PayloadError) as caught:
        load_flow(flow)
    assert str(caught.value).startswith(f"{used}:4:27 (used at {flow}:4:5): ")

    # at run time too: a failed expectation in the used file
    write(
        tmp_path,
        "common/check.yaml",
        "version: 1\nname: check\nsteps:\n  - list_segments:\n    expect: response.segments | length < 0\n",
    )
    flow = write(
        tmp_path, "run.yaml", "version: 1\nname: r\nsteps:\n  - list_segments:\n"
        "  - use: common/check.yaml\n",
    )  # fmt: skip
    code, events = run_events(flow, options_for_emulator(emulator, RunOptions(environ={})))
    assert code == 1
    assert events[1].error.startswith(
        f"{tmp_path}/common/check.yaml:5:13 (used at {flow}:5:5): expectation failed"
    )


def test_an_unknown_with_name_names_the_with_line_and_the_used_vars(tmp_path):
    used = write(tmp_path, "common/person.yaml", PERSON)
    flow = write(
        tmp_path,
        "main.yaml",
        "version: 1\nname: m\nsteps:\n  - use: common/person.yaml\n    with: {usr_id: x}\n",
    )
    with pytest.raises(FlowSchemaError) as caught:
        load_flow(flow)
    message = str(caught.value)
    assert message.startswith(f"{flow}:5:12: with: 'usr_id' is not a var of")
    assert f"(its vars: {used}:4:3)" in message
    assert "expected one of user_id, plan" in message


def test_use_step_options_and_saved_names_are_checked(tmp_path):
    write(tmp_path, "common/person.yaml", PERSON)
    head = "version: 1\nname: m\nsteps:\n  - use: common/person.yaml\n"
    with pytest.raises(FlowSchemaError, match="option 'when' cannot go on a use step"):
        load_flow(write(tmp_path, "a.yaml", head + "    when: 'true'\n"))
    with pytest.raises(FlowSchemaError, match="'with' goes on a use step only"):
        load_flow(write(tmp_path, "b.yaml", head + "  - list_segments:\n    with: {a: 1}\n"))
    unknown_inner = head + "    save: p\n  - get_person: {id: '{{ steps.p.nope }}'}\n"
    with pytest.raises(TemplateError, match="saves no 'nope'") as caught:
        load_flow(write(tmp_path, "c.yaml", unknown_inner))
    assert "expected one of pid" in str(caught.value)
    with pytest.raises(FlowSchemaError, match="does not exist"):
        load_flow(write(tmp_path, "d.yaml", "version: 1\nname: d\nsteps:\n  - use: nope.yaml\n"))
    with pytest.raises(TemplateError, match="undefined name 'nothere'"):
        load_flow(write(tmp_path, "e.yaml", head + "    with: {plan: '{{ nothere }}'}\n"))


def test_tags_are_parsed_and_checked(tmp_path):
    flow = write(tmp_path, "t.yaml", "version: 1\nname: t\ntags: [smoke, slow_2]\nsteps:\n"
                 "  - list_segments:\n")  # fmt: skip
    assert load_flow(flow).tags == ("smoke", "slow_2")
    assert load_flow(FLOWS / "scenarios" / "onboarding.yaml").tags == ("smoke", "onboarding")
    bad = write(tmp_path, "bad.yaml", "version: 1\nname: t\ntags: [has space]\nsteps:\n"
                "  - list_segments:\n")  # fmt: skip
    with pytest.raises(FlowSchemaError, match="tags"):
        load_flow(bad)


NEGATIVE = (
    "version: 1\nname: n\nsteps:\n  - get_person: {{id: {id}}}\n    expect_status: {status}\n"
)


@pytest.mark.parametrize("status", ["404", "'4xx'", "[400, 404]", "'404'"])
def test_expect_status_passes_on_the_refusal_with_response_the_error_body(
    tmp_path, emulator, status
):
    flow = write(
        tmp_path,
        "n.yaml",
        NEGATIVE.format(id="nobody_at_all", status=status)
        + "    save: refusal\n    expect: response.errors[0].detail == 'customer not found'\n",
    )
    code, events = run_events(flow, options_for_emulator(emulator, RunOptions(environ={})))
    assert code == 0, events[0].error
    assert events[0].detail == "HTTP 404" and events[0].attempts == 1
    assert events[0].saved == {"errors": [{"detail": "customer not found", "status": "404"}]}


def test_expect_status_fails_on_a_success_and_on_another_status(tmp_path, emulator):
    options = options_for_emulator(emulator, RunOptions(environ={}))
    flow = write(
        tmp_path,
        "ok.yaml",
        "version: 1\nname: n\nsteps:\n  - identify: {userId: 'neg_{{ run.id }}'}\n"
        "  - get_person: {id: 'neg_{{ run.id }}'}\n    expect_status: 404\n"
        "finally:\n  - delete: {userId: 'neg_{{ run.id }}'}\n",
    )
    code, events = run_events(flow, options)
    assert code == 1
    assert events[1].status == "failed"
    assert events[1].error == (
        f"{flow}:6:20: expected HTTP 404, but the API answered 200 (expected HTTP 404, found HTTP 200)"
    )
    flow = write(tmp_path, "other.yaml", NEGATIVE.format(id="nobody", status="'5xx'"))
    code, events = run_events(flow, options)
    assert code == 1 and events[0].failure.status == 404


def test_an_expected_status_is_not_retried_but_others_still_are(tmp_path, recording_server):
    answers = iter([(503, {}, {"meta": {"error": "busy"}}), (422, {}, {"meta": {"error": "no"}})])
    recording_server.handler = lambda request: next(answers)
    flow = write(tmp_path, "n.yaml", NEGATIVE.format(id="u1", status="422"))
    options = RunOptions(environ=env_for(recording_server.url), journal=False)
    code, events = run_events(flow, options)
    assert code == 0, events[0].error
    assert len(recording_server.requests) == 2 and events[0].attempts == 2  # 503 retried
    assert events[0].saved is None  # not saved: no save option

    answers = iter([(503, {}, {"meta": {"error": "down"}})] * 5)
    recording_server.requests.clear()
    flow = write(tmp_path, "five.yaml", NEGATIVE.format(id="u1", status="'5xx'"))
    code, events = run_events(flow, options)
    assert code == 0 and len(recording_server.requests) == 1  # an expected 503: asked once


def test_expect_status_cannot_go_with_loop_or_wait_until(tmp_path):
    flow = write(tmp_path, "n.yaml", NEGATIVE.format(id="x", status="404") + "    loop: [a]\n")
    with pytest.raises(FlowSchemaError, match="cannot go with loop or wait_until"):
        load_flow(flow)


INVALID = (
    "version: 1\nname: v\nsteps:\n"
    "  - identify: {{userId: u1, traits: {{plan: pro}}, not_a_field: 1}}\n"
    "    expect_status: 400\n{validate}"
)


def test_validate_false_sends_a_payload_the_schema_refuses(tmp_path, recording_server):
    refused = write(tmp_path, "refused.yaml", INVALID.format(validate=""))
    with pytest.raises(PayloadError, match="unknown field 'not_a_field'"):
        load_flow(refused)

    recording_server.handler = lambda request: (400, {}, {"errors": [{"message": "bad field"}]})
    flow = write(tmp_path, "sent.yaml", INVALID.format(validate="    validate: false\n"))
    options = RunOptions(environ=env_for(recording_server.url), journal=False)
    code, events = run_events(flow, options)
    assert code == 0, events[0].error
    [request] = recording_server.requests
    assert request.path == "/v1/identify" and request.body["not_a_field"] == 1
    result = CliRunner().invoke(main, ["plan", str(flow)], env=env_for(recording_server.url))
    assert result.exit_code == 0 and "not_a_field" in result.output


def test_validate_false_on_a_payload_no_request_can_be_built_from_fails_cleanly(
    tmp_path, recording_server
):
    flow = write(
        tmp_path,
        "v.yaml",
        "version: 1\nname: v\nsteps:\n  - get_person: {}\n    validate: false\n",
    )
    with pytest.raises(PayloadError, match="no get_person request can be built") as caught:
        run_flow(flow, RunOptions(environ=env_for(recording_server.url), journal=False))
    assert str(caught.value).startswith(f"{flow}:4:5: step 'get_person #1': ")
    assert recording_server.requests == []  # found before sending: exit 2


def test_resume_of_a_flow_with_use_replays_used_steps_and_their_saves(tmp_path, recording_server):
    write(tmp_path, "common/person.yaml", PERSON)
    flow = write(
        tmp_path,
        "main.yaml",
        "version: 1\nname: main\nsteps:\n"
        "  - use: common/person.yaml\n    with: {user_id: resumed}\n    save: p\n"
        "  - get_person: {id: '{{ steps.p.pid }}'}\n",
    )
    failing = {"left": 1}

    def handler(request):
        if "/customers/resumed" in request.path and request.method == "GET" and failing["left"]:
            failing["left"] -= 1
            return 400, {}, {"meta": {"error": "not yet"}}
        return 200, {}, {"customer": {"id": "resumed", "attributes": {}}}

    recording_server.handler = handler
    journal = tmp_path / "journal.db"
    options = RunOptions(environ=env_for(recording_server.url), journal=journal)
    first, events = run_events(flow, options)
    assert first == 1 and [e.step.key for e in events] == [
        "steps.0/steps.0", "steps.1", "steps.0/finally.0",
    ]  # fmt: skip
    run_id = _run_id(journal)
    sent = [(r.method, r.path.split("?")[0]) for r in recording_server.requests]
    recording_server.requests.clear()

    code, events = run_events(flow, RunOptions(environ=options.environ, journal=journal,
                                               resume=run_id))  # fmt: skip
    assert code == 0, [e.error for e in events]
    assert (events[0].step.key, events[0].detail) == ("steps.0/steps.0", "done before")
    again = [(r.method, r.path.split("?")[0]) for r in recording_server.requests]
    assert again == [sent[1]], "only the failed read is sent again, with the replayed save"


def _run_id(journal: Path) -> str:
    import sqlite3

    with sqlite3.connect(journal) as db:
        return db.execute("SELECT DISTINCT run_id FROM outcomes").fetchone()[0]


def test_a_with_value_cannot_pass_a_key_into_a_used_flow(tmp_path):
    write(tmp_path, "common/person.yaml", PERSON)
    flow = write(
        tmp_path,
        "m.yaml",
        "version: 1\nname: m\nsteps:\n  - use: common/person.yaml\n"
        "    with: {plan: '{{ env.CUSTOMERIO_APP_TOKEN }}'}\n",
    )
    with pytest.raises(FlowInputError, match="CUSTOMERIO_APP_TOKEN"):
        load_flow(flow)
