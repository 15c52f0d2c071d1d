"""Scenario flows against the emulator: expectations, polling, conditions, loops, cleanup."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import FLOWS, ROOT

from cio_flows import RunOptions, run_flow
from cio_flows.api import options_for_emulator
from cio_flows.emulator import Emulator
from cio_flows.run.events import StepFinished
from cio_flows.scenarios import run_one

SCENARIOS = sorted((FLOWS / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def emulator():
    with Emulator() as emu:
        yield emu


@pytest.fixture
def options(emulator) -> RunOptions:
    return options_for_emulator(emulator, RunOptions(environ={}))


LIBRARY = {
    "onboarding", "plan_upgrade", "churn_winback", "password_reset", "gdpr_delete",
    "push_to_device", "merge_duplicates", "account_object", "broadcast_audience",
    "beta_testers_segment", "bounced_email", "trial_journey",
}  # fmt: skip


def test_the_library_has_every_scenario():
    names = {p.stem for p in SCENARIOS}
    assert names == LIBRARY


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_passes_checks_outcomes_and_cleans_up(path, emulator, options):
    before = {p["id"] for p in emulator.inspect.people()}
    result = run_one(path, options)
    assert result.passed, result.failures
    assert "expect:" in path.read_text()  # each scenario checks its outcomes
    left = {p["id"] for p in emulator.inspect.people()} - before
    assert left == set(), f"{path.stem} left people behind: {left}"


def portable(source: Path) -> str:
    """A scenario's text that still finds the shared flows it uses once copied elsewhere
    (outside the project: run with its root, `--root ROOT`)."""
    return source.read_text().replace("../common/", f"{FLOWS / 'common'}/")


def break_expectation(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = portable(source).replace("../../schemas", "../schemas")
    assert old in text
    broken = tmp_path / source.name
    broken.write_text(text.replace(old, new, 1))
    return broken


def test_broken_expectation_fails_with_location_and_values_then_cleans_up(
    tmp_path, emulator, options
):
    broken = break_expectation(
        tmp_path,
        FLOWS / "scenarios" / "onboarding.yaml",
        'response.attributes.plan == "free"',
        'response.attributes.plan == "enterprise"',
    )
    line = next(
        n for n, text in enumerate(broken.read_text().splitlines(), 1) if "enterprise" in text
    )
    events: list[StepFinished] = []
    before = {p["id"] for p in emulator.inspect.people()}
    summary = run_flow(
        broken,
        replace(options, root=ROOT),
        [lambda e: isinstance(e, StepFinished) and events.append(e)],
    )
    assert summary.exit_code == 1
    failed = [e for e in events if e.status == "failed"]
    assert [e.step.name for e in failed] == ["attributes as sent"]
    assert failed[0].error == (
        f'{broken}:{line}:9: expectation failed: response.attributes.plan == "enterprise" '
        f'(expected "enterprise", found response.attributes.plan = "free")'
    )
    finally_steps = [e for e in events if e.step.section == "finally"]
    assert [e.status for e in finally_steps] == ["ok", "ok"]
    assert {p["id"] for p in emulator.inspect.people()} == before


def test_a_failed_step_skips_the_rest_but_not_finally(tmp_path, emulator, options, write_flow):
    flow = write_flow(
        "version: 1\nname: t\nsteps:\n"
        "  - identify: {userId: 'skip_{{ run.id }}'}\n"
        "  - get_person: {id: 'skip_{{ run.id }}'}\n    expect: response.attributes.plan == 'x'\n"
        "  - track: {userId: 'skip_{{ run.id }}', event: never}\n"
        "finally:\n  - delete: {userId: 'skip_{{ run.id }}'}\n"
    )
    events: list[StepFinished] = []
    run_flow(flow, options, [lambda e: isinstance(e, StepFinished) and events.append(e)])
    assert [e.status for e in events] == ["ok", "failed", "skipped", "ok"]


def test_when_and_loop_and_partial_save(emulator, options, write_flow):
    flow = write_flow(
        "version: 1\nname: t\nvars: {ids: [a, b, c]}\nsteps:\n"
        "  - identify: {userId: 'loop_{{ run.id }}_{{ item }}', traits: {n: '{{ loop_n }}'}}\n"
        "    loop: ids\n"
        "  - search: {filter: {attribute: {field: email, operator: exists}}}\n"
        "    save: {name: total, value: response.count}\n"
        "  - delete: {userId: nobody}\n    when: steps.total < 0\n"
        "finally:\n  - delete: {userId: 'loop_{{ run.id }}_{{ item }}'}\n    loop: ids\n"
    )
    flow.write_text(flow.read_text().replace("'{{ loop_n }}'", "1"))
    events: list[StepFinished] = []
    summary = run_flow(flow, options, [lambda e: isinstance(e, StepFinished) and events.append(e)])
    assert summary.ok
    statuses = [(e.step.kind, e.status, e.detail) for e in events]
    assert statuses[0] == ("identify", "ok", "3 item(s)")
    assert statuses[2] == ("delete", "skipped", "when is false")


def test_wait_until_times_out_with_the_values_it_saw(emulator, options, write_flow):
    flow = write_flow(
        "version: 1\nname: t\nsteps:\n"
        "  - search: {filter: {attribute: {field: email, operator: eq, value: nobody@example.com}}}\n"
        "    wait_until: {condition: response.count == 1, timeout: 0.3, interval: 0.1}\n"
    )
    events: list[StepFinished] = []
    summary = run_flow(flow, options, [lambda e: isinstance(e, StepFinished) and events.append(e)])
    assert summary.exit_code == 1
    assert "wait_until timed out after 0.3 s: response.count == 1" in events[0].error
    assert "(expected 1, found response.count = 0)" in events[0].error
    assert events[0].attempts >= 2  # it polled


def test_wait_until_only_on_read_steps(write_flow):
    from cio_flows import FlowSchemaError, load_flow

    flow = write_flow(
        "version: 1\nname: t\nsteps:\n  - delete: {userId: u}\n    wait_until: 'true'\n"
    )
    with pytest.raises(FlowSchemaError, match="only goes on a read step"):
        load_flow(flow)


@pytest.mark.slow
def test_pytest_plugin_collects_flow_files_as_items():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "flows/scenarios", "-rA"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(LIBRARY)} passed" in result.stdout
    for name in sorted(LIBRARY):
        assert f"flows/scenarios/{name}.yaml::{name}" in result.stdout


def test_cli_test_command_writes_one_junit_case_per_flow(tmp_path):
    import xml.etree.ElementTree as ET

    from click.testing import CliRunner

    from cio_flows.cli import main

    suite = tmp_path / "scenarios"
    suite.mkdir()
    churn = FLOWS / "scenarios" / "churn_winback.yaml"
    (suite / churn.name).write_text(portable(churn))
    broken = break_expectation(
        suite,
        FLOWS / "scenarios" / "onboarding.yaml",
        "response.queued_at > 0",
        "response.queued_at < 0",
    )
    junit = tmp_path / "out.xml"
    result = CliRunner().invoke(
        main, ["test", str(suite), "--emulator", "--junit", str(junit), "--root", str(ROOT)], env={}
    )
    assert result.exit_code == 1, result.output
    assert "1 passed, 1 failed" in result.output
    root = ET.parse(junit).getroot()
    cases = root.iter("testcase")
    by_name = {case.get("name"): case for case in cases}
    assert set(by_name) == {"scenario_churn_winback", "scenario_onboarding"}
    failure = by_name["scenario_onboarding"].find("failure")
    assert failure is not None and f"{broken}:" in failure.text
    assert "expected" in failure.text and by_name["scenario_churn_winback"].find("failure") is None


def test_cli_test_command_stops_on_an_invalid_flow_before_sending(tmp_path):
    from click.testing import CliRunner

    from cio_flows.cli import main

    (tmp_path / "bad.yaml").write_text("version: 1\nname: bad\nsteps:\n  - nope: {}\n")
    (tmp_path / "good.yaml").write_text(portable(FLOWS / "scenarios" / "password_reset.yaml"))
    result = CliRunner().invoke(main, ["test", str(tmp_path), "--emulator"], env={})
    assert result.exit_code == 2
    assert "INVALID" in result.output and "unknown step kind or option 'nope'" in result.output
    assert "passed " not in result.output.split("\n")[0]


def test_a_wrong_pipelines_key_fails_instead_of_a_silent_200(emulator, options, write_flow):
    from dataclasses import replace

    flow = write_flow("version: 1\nname: t\nsteps:\n  - identify: {userId: wrong_key_user}\n")
    env = {**options.environ, "CUSTOMERIO_PIPELINES_KEY": "not-the-key"}
    events: list[StepFinished] = []
    summary = run_flow(
        flow,
        replace(options, environ=env),
        [lambda e: isinstance(e, StepFinished) and events.append(e)],
    )
    assert summary.exit_code == 3  # Customer.io refused the credentials
    assert "HTTP 401" in events[0].error and "not-the-key" not in events[0].error
    assert emulator.inspect.person("wrong_key_user") is None
