"""The pytest plugin on a project of its own (pytest in a subprocess, --strict-markers on): tags
as markers, pytest-xdist, --cio-flows-record / --cio-flows-replay with --block-network, and
--cio-flows-emulator-workspace."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SECRETS
from support import TEAM_HELLO, TEAM_WORKSPACE
from test_record_replay import PARTNER, SCHEMA_LINE, closed_port_url, write_suite

from cio_flows.cli import main
from cio_flows.pytest_plugin import _loopback_only

pytestmark = pytest.mark.slow  # each test runs pytest as a real process


@pytest.fixture
def project(tmp_path) -> Path:
    """A project with the suite of test_record_replay and pytest's --strict-markers."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers\n")
    write_suite(tmp_path)
    return tmp_path


def pytest_in(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args],
        cwd=project,
        env={**base, "PARTNER_TOKEN": PARTNER, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    result.output = result.stdout + result.stderr  # type: ignore[attr-defined]
    return result


def closed_urls() -> dict[str, str]:
    dead = closed_port_url()
    return {f"CUSTOMERIO_{family}_URL": dead for family in ("TRACK", "PIPELINES", "APP")}


def test_tags_are_markers_that_strict_markers_accepts(project):
    smoke = pytest_in(project, "suite", "-m", "smoke")
    assert smoke.returncode == 0, smoke.output
    assert "1 passed, 2 deselected" in smoke.output
    assert "suite/signup.yaml::signup" in smoke.output
    others = pytest_in(project, "suite", "-m", "negative or batch")
    assert others.returncode == 0, others.output
    assert "2 passed, 1 deselected" in others.output
    assert "signup" not in others.stdout.split("short test summary")[-1]


def test_flows_run_in_parallel_under_xdist(project):
    result = pytest_in(project, "suite", "-n", "2", "-v")
    assert result.returncode == 0, result.output
    assert "created: 2/2 workers" in result.output and "2 workers [3 items]" in result.output
    assert "3 passed" in result.output


def test_record_then_replay_with_block_network(project):
    record = pytest_in(project, "suite", "--cio-flows-record", "cassettes", **SECRETS)
    assert record.returncode == 0, record.output
    cassettes = project / "cassettes" / "suite"
    assert sorted(p.stem for p in cassettes.iterdir()) == ["refused", "rows", "signup"]

    # no key, every URL at a closed port, and nothing but loopback may open a connection
    replay = pytest_in(
        project, "suite", "--cio-flows-replay", "cassettes", "--block-network", **closed_urls()
    )
    assert replay.returncode == 0, replay.output
    assert "3 passed" in replay.output

    # cassettes are the same as `cio-flows test --record` writes: the CLI replays them too
    env = {**dict.fromkeys(SECRETS), **closed_urls(), "PARTNER_TOKEN": PARTNER}
    cwd = Path.cwd()
    try:
        os.chdir(project)
        cli = CliRunner().invoke(main, ["test", "suite", "--replay", "cassettes"], env=env)
    finally:
        os.chdir(cwd)
    assert cli.exit_code == 0, cli.output

    signup = project / "suite" / "signup.yaml"
    signup.write_text(signup.read_text().replace("event: plan_upgraded", "event: upgraded"))
    changed = pytest_in(project, "suite", "--cio-flows-replay", "cassettes", **closed_urls())
    assert changed.returncode == 1, changed.output
    assert "1 failed, 2 passed" in changed.output
    assert (
        "POST /v1/track differs from the cassette at $.event in the body:"
        ' recorded "plan_upgraded", now "upgraded"'
    ) in changed.output


def test_block_network_refuses_a_live_workspace(project):
    result = pytest_in(project, "suite", "--cio-flows-live", "--block-network")
    assert result.returncode == 4  # pytest's usage error
    assert "--block-network forbids --cio-flows-live" in result.output


def test_loopback_only_lets_nothing_else_connect():
    class Config:
        def getoption(self, name, default=None):
            return None

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with _loopback_only(Config()):
            with socket.socket() as remote, pytest.raises(RuntimeError, match=r"192\.0\.2\.1"):
                remote.connect(("192.0.2.1", 9))  # TEST-NET-1: refused before any packet
            with socket.socket() as local:
                local.connect(server.getsockname())
        assert socket.socket.connect.__name__ == "connect"  # unblocked afterwards


def test_emulator_workspace_option(project):
    (project / "workspace.yaml").write_text(TEAM_WORKSPACE)
    (project / "team").mkdir()
    (project / "team" / "hello.yaml").write_text(SCHEMA_LINE + TEAM_HELLO)
    result = pytest_in(project, "team", "--cio-flows-emulator-workspace", "workspace.yaml")
    assert result.returncode == 0, result.output
    demo = pytest_in(project, "team")  # the demo workspace has no such template
    assert demo.returncode == 1, demo.output
