"""`cio-flows test --record DIR` / `--replay DIR`: a suite recorded on the emulator replays with
no network, fails a flow whose requests changed (naming the difference), keeps no key, renders
run.id, now(), unix_now() and uuid() the same, and writes cassettes vcrpy reads."""

from __future__ import annotations

import re
import shlex
import socket
from dataclasses import replace
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner
from conftest import SECRETS

from cio_flows.cli import main
from cio_flows.redact import forms
from cio_flows.run.replay import first_difference
from cio_flows.scenarios import SCENARIO_OPTIONS, recording, replaying, run_scenarios
from cio_flows.wire.exchange import Exchange

SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/flow.schema.json\n"
PARTNER = "partner-secret-123456"  # a secret by its name, sent in a payload: masked

SHARED_PERSON = """\
version: 1
name: shared_person
vars:
  user_id: nobody
steps:
  - name: create the person
    identify: {userId: "{{ user_id }}", traits: {plan: free, created: "{{ now() }}"}}
finally:
  - delete: {userId: "{{ user_id }}"}
"""

SUITE = {
    "signup": """\
version: 1
name: signup
tags: [smoke]
vars:
  user_id: "rr_{{ run.id }}"
steps:
  - use: ../shared/person.yaml
    with: {user_id: "{{ user_id }}"}
  - name: upgrade
    track:
      userId: "{{ user_id }}"
      event: plan_upgraded
      properties:
        mrr: 49
        at: "{{ now() }}"
        ref: "{{ uuid() }}"
        unix: "{{ unix_now() }}"
        partner: "{{ env.PARTNER_TOKEN }}"
  - name: read back
    get_person: {id: "{{ user_id }}"}
    expect: response.attributes.plan == "free"
""",
    "rows": """\
version: 1
name: rows
tags: [batch]
for_each: {file: people.csv}
steps:
  - identify:
      userId: "row_{{ row.id }}_{{ run.id }}"
      traits: {ref: "{{ uuid() }}", at: "{{ now() }}"}
  - delete: {userId: "row_{{ row.id }}_{{ run.id }}"}
""",
    "refused": """\
version: 1
name: refused
tags: [negative]
steps:
  - name: nobody there
    get_person: {id: "nobody_{{ run.id }}"}
    expect_status: 404
""",
}


def write_suite(root: Path) -> Path:
    """suite/ (three flows) and shared/person.yaml, which signup uses, under root."""
    (root / "shared").mkdir(parents=True)
    (root / "shared" / "person.yaml").write_text(SCHEMA_LINE + SHARED_PERSON)
    suite = root / "suite"
    suite.mkdir()
    for name, text in SUITE.items():
        (suite / f"{name}.yaml").write_text(SCHEMA_LINE + text)
    (suite / "people.csv").write_text("id\n" + "".join(f"{n}\n" for n in range(1, 7)))
    return suite


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def recording_env() -> dict[str, str | None]:
    return {**SECRETS, "PARTNER_TOKEN": PARTNER}


def replay_env() -> dict[str, str | None]:
    """No key at all, and every family's URL at a closed port: a request that left would fail."""
    dead = closed_port_url()
    env: dict[str, str | None] = dict.fromkeys(SECRETS)
    for family in ("TRACK", "PIPELINES", "APP"):
        env[f"CUSTOMERIO_{family}_URL"] = dead
    return {**env, "PARTNER_TOKEN": PARTNER}


def cli(args: list[str], env: dict[str, str | None]):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


@pytest.fixture
def recorded(tmp_path, monkeypatch) -> Path:
    """The suite recorded against the emulator into tmp_path/cassettes (cwd: tmp_path)."""
    monkeypatch.chdir(tmp_path)
    write_suite(tmp_path)
    result = cli(["test", "suite", "--emulator", "--record", "cassettes"], recording_env())
    assert result.exit_code == 0, result.output
    return tmp_path / "cassettes"


def test_a_recorded_suite_replays_with_no_network_and_passes(recorded):
    assert sorted(p.name for p in (recorded / "suite").iterdir()) == [
        "refused.yaml",
        "rows.yaml",
        "signup.yaml",
    ]
    result = cli(["test", "suite", "--replay", "cassettes", "--jobs", "2"], replay_env())
    assert result.exit_code == 0, result.output
    assert "3 passed, 0 failed" in result.output


def test_a_changed_payload_fails_that_flow_naming_the_difference(recorded):
    signup = Path("suite/signup.yaml")
    signup.write_text(signup.read_text().replace("mrr: 49", "mrr: 50"))
    result = cli(["test", "suite", "--replay", "cassettes"], replay_env())
    assert result.exit_code == 1, result.output
    assert "2 passed, 1 failed" in result.output
    expected = (
        "replay of cassettes/suite/signup.yaml: POST /v1/track differs from the cassette at"
        " $.properties.mrr in the body: recorded 49, now 50"
    )
    assert expected in result.output
    failed = [line for line in result.output.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "signup" in failed[0]


def test_a_step_added_or_removed_fails_the_replay(recorded):
    refused = Path("suite/refused.yaml")
    original = refused.read_text()
    refused.write_text(original + "  - list_segments:\n")
    added = cli(["test", "suite/refused.yaml", "--replay", "cassettes"], replay_env())
    assert added.exit_code == 1
    assert "GET /v1/segments is not in the cassette" in added.output

    signup = Path("suite/signup.yaml")
    signup.write_text(signup.read_text().split("  - name: read back")[0])
    removed = cli(["test", "suite/signup.yaml", "--replay", "cassettes"], replay_env())
    assert removed.exit_code == 1
    assert "1 recorded request(s) were not sent, the first GET /v1/customers/" in removed.output


def test_replay_without_a_cassette_is_invalid_input(recorded):
    Path("suite/new_flow.yaml").write_text(SCHEMA_LINE + SUITE["refused"].replace("refused", "n"))
    result = cli(["test", "suite", "--replay", "cassettes"], replay_env())
    assert result.exit_code == 2, result.output
    assert "no cassette for this flow: cassettes/suite/new_flow.yaml" in result.output


def test_replay_takes_no_emulator_or_record(recorded):
    for extra in (["--emulator"], ["--record", "elsewhere"]):
        result = cli(["test", "suite", "--replay", "cassettes", *extra], replay_env())
        assert result.exit_code == 2
        assert "--replay sends nothing" in result.output


def test_cassettes_hold_no_key_in_any_form(recorded):
    texts = [path.read_text() for path in recorded.rglob("*.yaml")]
    secrets = [
        SECRETS["CUSTOMERIO_TRACK_TOKEN"],
        SECRETS["CUSTOMERIO_PIPELINES_KEY"],
        SECRETS["CUSTOMERIO_APP_TOKEN"],
        f"{SECRETS['CUSTOMERIO_SITE_ID']}:{SECRETS['CUSTOMERIO_TRACK_TOKEN']}",
        f"{SECRETS['CUSTOMERIO_PIPELINES_KEY']}:",
        PARTNER,
    ]
    for text in texts:
        assert "authorization" not in text.lower()
        for secret in secrets:
            for form in forms(secret):
                assert form not in text, f"a form of a key is in a cassette: {form!r}"
    signup = (recorded / "suite" / "signup.yaml").read_text()
    assert '"partner":"***"' in signup  # masked where it was, so a replay compares it masked


def test_vcrpy_reads_the_cassette(recorded):
    from vcr.serialize import deserialize
    from vcr.serializers import yamlserializer

    text = (recorded / "suite" / "signup.yaml").read_text()
    requests, responses, metadata = deserialize(text, yamlserializer)
    assert [(r.method, r.path) for r in requests[:2]] == [
        ("POST", "/v1/identify"),
        ("POST", "/v1/track"),
    ]
    assert all(response["status"]["code"] == 200 for response in responses)
    assert b'"event":"plan_upgraded"' in requests[1].body
    assert metadata["cio_flows"]["run_id"] in requests[0].body.decode()


def test_run_id_now_unix_now_and_uuid_replay_identically(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PARTNER_TOKEN", PARTNER)
    write_suite(tmp_path)

    def requests_of(around, options, emulator: bool) -> list[tuple[str, str, str | None]]:
        sent: list[Exchange] = []
        options = replace(options, transport=replace(options.transport, on_exchange=sent.append))
        results = list(run_scenarios(["suite"], options, emulator=emulator, around=around, jobs=3))
        assert all(r.passed for r in results), [r.failures for r in results]
        return sorted((e.method, e.url.split("/", 3)[3], e.request_body) for e in sent)

    live = replace(SCENARIO_OPTIONS, environ={**SECRETS, "PARTNER_TOKEN": PARTNER})
    recorded = requests_of(recording("cassettes"), live, emulator=True)
    replayed = requests_of(
        replaying("cassettes"), replace(live, environ={"PARTNER_TOKEN": PARTNER}), emulator=False
    )
    assert replayed == recorded  # every body: run id, now(), unix_now(), uuid() and all

    cassette = yaml.safe_load((tmp_path / "cassettes" / "suite" / "signup.yaml").read_text())
    meta = cassette["metadata"]["cio_flows"]
    track = next(body for _, _, body in replayed if body and "plan_upgraded" in body)
    assert meta["run_id"] in track
    values = meta["helpers"]["-"]
    assert values["uuid"][-1] in track and str(values["unix_now"][-1]) in track
    assert values["now"][-1] in track
    rows = yaml.safe_load((tmp_path / "cassettes" / "suite" / "rows.yaml").read_text())
    assert sorted(rows["metadata"]["cio_flows"]["helpers"]) == [str(n) for n in range(1, 7)]


def test_first_difference_names_the_json_path():
    recorded = {"batch": [{"traits": {"ref": "a"}}, {"traits": {"ref": "b", "x": 1}}]}
    assert first_difference(recorded, recorded) is None
    now = {"batch": [{"traits": {"ref": "a"}}, {"traits": {"ref": "c", "x": 1}}]}
    assert first_difference(recorded, now) == ("$.batch[1].traits.ref", "b", "c")
    where, was, _ = first_difference({"a b": 1, "n": True}, {"a b": 1, "n": 1})
    assert (where, was) == ("$.n", True)  # true is not 1 in JSON
    assert first_difference({"a b": 1}, {})[0] == '$["a b"]'


# --- the GitHub Actions workflow in docs/ci, included in the README ---------------------------

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "docs" / "ci" / "github-actions.yml"


def workflow_commands(workflow: dict) -> dict[str, list[list[str]]]:
    """Each job's `cio-flows ...` command lines, split as a shell would, with every
    `${{ expression }}` replaced by a sample value (a matrix shard: 1)."""
    commands: dict[str, list[list[str]]] = {}
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                line = re.sub(r"\$\{\{[^}]*\}\}", "1", line)
                if line.strip().startswith("cio-flows "):
                    commands.setdefault(name, []).append(shlex.split(line)[1:])
    return commands


def test_the_ci_workflow_parses_and_runs_real_commands(monkeypatch):
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "workflow_dispatch"} <= set(triggers)
    commands = workflow_commands(workflow)
    assert set(commands) == {"record", "replay"}
    monkeypatch.chdir(ROOT)  # the paths they name exist in this repository
    for args in [*commands["record"], *commands["replay"]]:
        command = main.get_command(click.Context(main), args[0])
        assert command is not None, args
        command.make_context(args[0], args[1:])  # raises on an unknown option or a bad value
    (record,) = commands["record"]
    (replay,) = commands["replay"]
    assert record[0] == "test" and "--record" in record
    assert replay[0] == "test" and "--replay" in replay and "--junit" in replay
    assert replay[replay.index("--replay") + 1] == record[record.index("--record") + 1]
    uploads = [
        step["with"]["path"]
        for step in workflow["jobs"]["replay"]["steps"]
        if str(step.get("uses", "")).startswith("actions/upload-artifact")
    ]
    assert any("junit-${{ matrix.shard }}.xml" in path for path in uploads)


def test_the_readme_shows_the_workflow_as_it_is():
    readme = (ROOT / "README.md").read_text()
    assert "## Suites in CI" in readme
    assert f"```yaml\n{WORKFLOW.read_text()}```" in readme
