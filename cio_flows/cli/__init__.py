"""Command line: argument parsing and printing only. Every command calls the same functions a
notebook calls. One module per command group; the shared flags live in `options`.

Each command's module loads when that command runs: `cio-flows --help` lists them from
SUMMARY without importing the run machinery, and `validate` loads only what it uses.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .emulator import emulator_behaviour, family_settings

# name: (module, attribute) of each command
COMMANDS = {
    "emulator": ("emulator", "emulator"),
    "plan": ("plan", "plan"),
    "run": ("run", "run"),
    "runs": ("run", "runs"),
    "serve": ("serve", "serve"),
    "test": ("suite", "test_command"),
    "validate": ("plan", "validate"),
    "workspace": ("workspace", "workspace"),
}
# What `--help` shows of each command, shortened as click shortens a command's own help (each is
# the first paragraph of the command's docstring; tests/test_cold_start.py compares them).
SUMMARY = {
    "emulator": "Run the local Customer.io emulator in the foreground (Ctrl-C to stop).",
    "plan": "Render and validate every step; print the requests a run would send. Sends nothing.",
    "run": "Run FLOW. Exit 0 when every step succeeded, 1 when some failed, 2 on invalid input,"
    " 3 when Customer.io refused the keys, 4 when it or the network stayed unavailable.",
    "runs": "Recent runs from the journal, newest first; `runs show RUN_ID`, `runs prune`.",
    "serve": "Answer POSTed JSON bodies by running FLOW with each as its `row` (headers as"
    " `request.headers`).",
    "test": "Run every flow under PATHS as a test case. Exit 1 if any fails, 2 if any is invalid"
    " (nothing is sent), 3 if Customer.io refused the keys, 4 if it stayed unavailable.",
    "validate": "Check FLOW without sending anything.",
    "workspace": "Workspace files for the emulator.",
}


def load_command(name: str) -> click.Command:
    module, attribute = COMMANDS[name]
    command: click.Command = getattr(import_module(f"{__name__}.{module}"), attribute)
    return command


class LazyGroup(click.Group):
    """A group whose commands are imported when used, not when the group is built."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)  # as click.Group does
        rows = [(name, short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def short_help(name: str, limit: int) -> str:
    """SUMMARY[name] cut to `limit` characters as click cuts a command's help."""
    return click.Command(name, help=SUMMARY[name]).get_short_help_str(limit)


@click.group(cls=LazyGroup)
@click.version_option(package_name="cio-flows")
def main() -> None:
    """Run declarative YAML flows against Customer.io or its local emulator."""


def __getattr__(name: str) -> Any:
    """emulator_behaviour and family_settings, from the emulator's command on first use."""
    if name in ("emulator_behaviour", "family_settings"):
        return getattr(import_module(f"{__name__}.emulator"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["emulator_behaviour", "family_settings", "main"]
