"""Invalid input exits 2 with file:line:col and a clear reason, before any request is sent."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from conftest import SECRETS, env_for

from cio_flows.cli import main

GOOD_HEAD = "version: 1\nname: demo\nsteps:\n"


def run_cli(args, env):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


CASES = {
    "yaml syntax": (
        GOOD_HEAD + "  - identify: {userId: x\n",
        r":5:1: YAML syntax error",
    ),
    "unknown step kind": (
        GOOD_HEAD + "  - identify: {userId: x}\n  - trak: {userId: x, event: e}\n",
        r":5:5: unknown step kind or option 'trak' in 'steps\[1\]' \(expected one of",
    ),
    "missing required field": (
        GOOD_HEAD + "  - track:\n      userId: x\n      properties: {a: 1}\n",
        r":5:7: step 'track #1': missing required field 'event'",
    ),
    "undefined variable": (
        GOOD_HEAD + '  - identify: {userId: x}\n  - track: {userId: "{{ user }}", event: e}\n',
        r":5:21: step 'track #2': undefined name 'user'",
    ),
    "wrong type after rendering": (
        GOOD_HEAD + "  - get_person: {id: x, id_type: \"{{ 'emial' }}\"}\n",
        r":4:34: step 'get_person #1': invalid field 'id_type' \(expected one of 'id', 'email', 'cio_id'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_flow_exits_2_and_sends_nothing(case, write_flow, recording_server):
    text, pattern = CASES[case]
    path = write_flow(text)
    result = run_cli(["run", str(path)], env_for(recording_server.url))
    assert result.exit_code == 2, result.output
    assert recording_server.requests == []
    assert result.output.startswith(f"error: {path}")
    assert re.search(pattern, result.output), result.output
    assert "run id" not in result.output


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_reports_the_same_errors(case, write_flow):
    text, pattern = CASES[case]
    result = run_cli(["validate", str(write_flow(text))], {})
    assert result.exit_code == 2
    assert re.search(pattern, result.output), result.output


def test_missing_credentials_name_the_variables(write_flow, recording_server):
    path = write_flow(GOOD_HEAD + "  - identify: {userId: x}\n  - list_segments:\n")
    env = {name: "" for name in SECRETS} | {"CUSTOMERIO_TRACK_URL": recording_server.url}
    result = run_cli(["run", str(path)], env)
    assert result.exit_code == 2
    assert "CUSTOMERIO_SITE_ID, CUSTOMERIO_TRACK_TOKEN, CUSTOMERIO_APP_TOKEN" in result.output
    assert recording_server.requests == []


def test_unknown_var_override(write_flow):
    path = write_flow("version: 1\nname: demo\nvars: {a: 1}\nsteps:\n  - list_segments:\n")
    result = run_cli(["validate", str(path), "--var", "b=2"], {})
    assert result.exit_code == 2
    assert "--var b: the flow declares no such variable (expected one of a" in result.output


def test_valid_flow_validates(write_flow):
    result = run_cli(["validate", str(write_flow(GOOD_HEAD + "  - list_segments:\n"))], {})
    assert result.exit_code == 0
    assert "valid flow 'demo' with 1 step(s)" in result.output


def test_emulator_flags_become_limits_and_faults():
    from cio_flows.cli import emulator_behaviour

    limits, faults = emulator_behaviour(
        None, ("track=50", "app=5"), ("all=0.05",), ("track=0.1",), ()
    )
    assert limits == {"track": 50.0, "app": 5.0}
    assert faults == {
        "track": {"latency": 0.05, "error_rate": 0.1},
        "pipelines": {"latency": 0.05},
        "app": {"latency": 0.05},
    }
    assert emulator_behaviour("customerio", (), (), (), ()) == ("customerio", None)


def test_emulator_rejects_a_bad_family_setting():
    result = CliRunner().invoke(main, ["emulator", "--limit", "trak=5"])
    assert result.exit_code == 2
    assert "expected FAMILY=NUMBER" in result.output and "'trak=5'" in result.output
