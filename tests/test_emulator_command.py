"""The emulator's one command line (`cio-flows emulator`, `python -m cio_flows.emulator`): every
bad setting is one clear line and exit 2, before anything listens; never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cio_flows.cli import main
from cio_flows.emulator import Faults, RateLimit


def emulator_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["emulator", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_a_port_outside_0_to_65535_is_refused(port: str) -> None:
    code, output = emulator_cli("--port", port)
    assert code == 2
    assert "Invalid value for '--port'" in output and "0<=x<=65535" in output


def test_a_database_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "such" / "dir" / "emulator.db"
    code, output = emulator_cli("--db", str(missing_dir), "--port", "0")
    assert code == 2
    assert f"error: cannot use --db {missing_dir}: unable to open database file" in output


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not SQLite\n" * 100)
    code, output = emulator_cli("--db", str(garbage), "--port", "0")
    assert code == 2
    assert f"error: cannot use --db {garbage}: file is not a database" in output


def test_a_workspace_whose_people_are_not_a_list_is_named(tmp_path: Path) -> None:
    workspace = tmp_path / "ws.yaml"
    workspace.write_text("people: 5\n", encoding="utf-8")
    code, output = emulator_cli("--workspace", str(workspace), "--port", "0")
    assert code == 2
    assert (
        f"error: workspace {workspace}: people: expected a list of entries, found int 5" in output
    )


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--latency", "app=1e308", "latency (seconds): expected a number from 0 to 3600"),
        ("--latency", "all=-1", "latency (seconds): expected a number from 0 to 3600"),
        ("--limit", "track=-5", "rate limit (requests per second): expected a number over 0"),
        ("--limit", "track=0", "rate limit (requests per second): expected a number over 0"),
        ("--limit", "app=inf", "rate limit (requests per second): expected a number over 0"),
        ("--error-rate", "track=nan", "error rate (a share): expected a number from 0 to 1"),
        ("--drop-rate", "all=1.5", "drop rate (a share): expected a number from 0 to 1"),
    ],
)
def test_a_limit_or_fault_out_of_range_names_its_option(option: str, value: str, said: str) -> None:
    code, output = emulator_cli(option, value)
    assert code == 2
    assert f"Invalid value for {option}: {said}" in output


def test_the_settings_objects_refuse_the_same_values() -> None:
    # The workspace file and the Python API build these too: the same checks apply there.
    with pytest.raises(ValueError, match="latency"):
        Faults(latency=float("inf"))
    with pytest.raises(ValueError, match="error rate"):
        Faults(error_rate=float("nan"))
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit(-5)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(10, 0)
    assert Faults(latency=0.5, error_rate=1.0, drop_rate=0.0).active
    assert RateLimit(0.1, 1).capacity == 1


def test_demo_people_with_a_workspace_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "ws.yaml"
    workspace.write_text("people: []\n", encoding="utf-8")
    code, output = emulator_cli("--workspace", str(workspace), "--demo-people", "5")
    assert code == 2
    assert "--demo-people cannot be combined with --workspace or --empty" in output


@pytest.mark.slow
def test_python_m_cio_flows_emulator_is_the_same_command() -> None:
    """The module entry point has the same options and checks (it was a second parser)."""
    run = [sys.executable, "-m", "cio_flows.emulator"]
    shown = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0
    for option in ("--host", "--limit", "--latency", "--error-rate", "--drop-rate", "--empty"):
        assert option in shown.stdout
    assert "python -m cio_flows.emulator" in shown.stdout
    refused = subprocess.run(
        [*run, "--latency", "app=1e308"], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "latency (seconds): expected a number from 0 to 3600" in refused.stderr


def test_limits_of_their_own_for_sends_and_triggers() -> None:
    from cio_flows.emulator.command import emulator_behaviour

    limits, _ = emulator_behaviour(None, ("transactional=50", "triggers=0.5", "app=5"), (), (), ())
    assert limits == {"transactional": 50.0, "triggers": 0.5, "app": 5.0}
    result = CliRunner().invoke(main, ["emulator", "--latency", "transactional=1"])
    assert result.exit_code == 2 and "transactional=1" in result.output


def test_a_webhook_that_is_not_a_url_is_refused() -> None:
    result = CliRunner().invoke(main, ["emulator", "--webhook", "ftp://host/x"])
    assert result.exit_code == 2 and "http(s) URL" in result.output
