"""Commands import only what they need: `--help` and `validate` load no rich, no jsonschema,
no emulator (starlette, uvicorn) and no pandas. Timing goals live in benchmarks/; what is
checked here is which modules a fresh interpreter has loaded, which does not vary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test starts a fresh interpreter

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("jsonschema", "rich", "starlette", "uvicorn", "pandas", "cio_flows.emulator.server")

SCRIPT = """
import json, sys
from click.testing import CliRunner
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_after(body: str) -> list[str]:
    code = SCRIPT.format(body=body, heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return json.loads(out.splitlines()[-1])


def test_importing_the_cli_loads_nothing_heavy():
    assert loaded_after("import cio_flows.cli") == []


def test_help_loads_nothing_heavy():
    body = (
        "from cio_flows.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0 and 'plan' in result.output, result.output"
    )
    assert loaded_after(body) == []


def test_validating_a_small_flow_loads_nothing_heavy(tmp_path):
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "version: 1\nname: small\nsteps:\n"
        "  - identify: {userId: u1, traits: {email: 'u1@example.com'}}\n"
        "  - track: {userId: u1, event: signed_up, properties: {plan: '{{ 1 + 1 }}'}}\n"
    )
    body = (
        "from cio_flows.cli import main\n"
        f"result = CliRunner().invoke(main, ['validate', {str(flow)!r}])\n"
        "assert result.exit_code == 0, result.output"
    )
    assert loaded_after(body) == []


RUN_MACHINERY = ("cio_flows.api", "cio_flows.run.prepare", "cio_flows.emulator.command")
SENDING = ("requests", "cio_flows.wire.transport", "cio_flows.run.journal", "isoduration")


def loaded_of(body: str, names: tuple[str, ...]) -> list[str]:
    code = SCRIPT.format(body=body, heavy=names)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return json.loads(out.splitlines()[-1])


def test_help_loads_no_command():
    """--help lists the commands without importing them (cli.SUMMARY)."""
    body = (
        "from cio_flows.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0 and 'validate' in result.output, result.output"
    )
    assert loaded_of(body, RUN_MACHINERY) == []


def test_help_lists_each_command_as_the_command_describes_itself():
    import click

    from cio_flows.cli import COMMANDS, SUMMARY, load_command, main, short_help

    assert set(SUMMARY) == set(COMMANDS)
    context = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(context, name)
        assert command is load_command(name) and command.name == name
        for limit in (30, 45, 65, 300):  # narrow and wide terminals
            assert short_help(name, limit) == command.get_short_help_str(limit), (name, limit)


def test_validate_loads_nothing_that_sends():
    body = (
        "from cio_flows.cli import main\n"
        "result = CliRunner().invoke(main, ['validate', 'flows/onboarding.yaml'])\n"
        "assert result.exit_code == 0, result.output"
    )
    code = SCRIPT.format(body=body, heavy=SENDING)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_the_progress_bar_still_loads_on_demand():
    body = "from cio_flows.reporting import ProgressReporter\nassert ProgressReporter"
    assert loaded_after(body) == ["rich"]


def test_validate_does_not_build_the_iri_grammar():
    """jsonschema imports rfc3987_syntax (1 to 2.5 s of grammar building) when installed; the
    schemas use no iri format, so validate keeps it out while the formats it uses still hold."""
    body = (
        "from cio_flows.cli import main\n"
        "result = CliRunner().invoke(main, ['validate', 'flows/onboarding.yaml'])\n"
        "assert result.exit_code == 0, result.output\n"
        "from cio_flows.flow.schemas import step_validator\n"
        "bad = {'userId': 'u', 'timestamp': '2025-13-45T99:00:00Z', 'traits': {}}\n"
        "assert not step_validator('identify').is_valid(bad)\n"
        "import importlib.util; assert importlib.util.find_spec('rfc3987_syntax')\n"
        "print(json.dumps(['rfc3987_syntax' in sys.modules]))"
    )
    code = SCRIPT.format(body=body, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-2]) == [False]
