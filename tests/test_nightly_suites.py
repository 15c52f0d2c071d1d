"""Issue 23 (11): a flow file other flows `use` is not a test case (cio-flows test, pytest);
`--exclude-tag T` leaves flows out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import env_for

from cio_flows.cli import main

SCHEMA = "# yaml-language-server: $schema=../schemas/flow.schema.json\n"
SHARED = """version: 1
name: shared_person
vars:
  who: nobody
steps:
  - name: create
    identify: {userId: "{{ who }}", traits: {plan: free}}
"""


def case(name: str, tags: str = "", uses: bool = True) -> str:
    tagged = f"tags: [{tags}]\n" if tags else ""
    step = (
        '  - use: shared/person.yaml\n    with: {who: "' + name + '_{{ run.id }}"}\n'
        if uses
        else '  - track: {userId: "' + name + '", event: checked}\n'
    )
    return f"version: 1\nname: {name}\n{tagged}steps:\n{step}"


def write_suite(root: Path) -> Path:
    suite = root / "suite"
    (suite / "shared").mkdir(parents=True)
    (suite / "shared" / "person.yaml").write_text(SCHEMA + SHARED, encoding="utf-8")
    (suite / "signup.yaml").write_text(SCHEMA + case("signup", "smoke"), encoding="utf-8")
    (suite / "upgrade.yaml").write_text(SCHEMA + case("upgrade"), encoding="utf-8")
    (suite / "soak.yaml").write_text(SCHEMA + case("soak", "slow, smoke"), encoding="utf-8")
    (suite / "audit.yaml").write_text(SCHEMA + case("audit", "slow", uses=False), encoding="utf-8")
    return suite


def test_the_shared_file_is_no_test_case_and_slow_flows_are_excluded(tmp_path, recording_server):
    suite = write_suite(tmp_path)
    result = CliRunner().invoke(
        main,
        ["test", str(suite), "--exclude-tag", "slow"],
        env=env_for(recording_server.url),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    listed = result.output
    assert "signup" in listed and "upgrade" in listed
    assert "shared_person" not in listed and "person.yaml" not in listed
    assert "soak" not in listed and "audit" not in listed
    # the shared steps ran inside each flow using it
    people = [r.body for r in recording_server.requests if isinstance(r.body, dict)]
    assert len(people) == 2


def test_exclude_tag_is_repeatable_and_an_invalid_shared_file_still_fails(
    tmp_path, recording_server
):
    suite = write_suite(tmp_path)
    env = env_for(recording_server.url)
    result = CliRunner().invoke(
        main, ["test", str(suite), "--exclude-tag", "slow", "--exclude-tag", "smoke"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "upgrade" in result.output and "signup" not in result.output
    (suite / "shared" / "person.yaml").write_text(
        SCHEMA + SHARED.replace("identify:", "identifyy:"), encoding="utf-8"
    )
    recording_server.requests.clear()
    broken = CliRunner().invoke(main, ["test", str(suite)], env=env)
    assert broken.exit_code == 2, broken.output  # checked through the flows using it
    assert "person.yaml" in broken.output
    assert recording_server.requests == []


@pytest.mark.slow
def test_pytest_deselects_the_shared_file_and_not_slow_leaves_slow_out(tmp_path):
    suite = write_suite(tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            str(suite),
            "-m",
            "not slow",
        ],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "2 passed, 3 deselected" in output  # person.yaml (shared), soak and audit (slow)
    assert "person.yaml" not in output
