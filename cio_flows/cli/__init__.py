"""Command line: argument parsing and printing only. Every command calls the same functions a
notebook calls. One module per command group; the shared flags live in `options`."""

from __future__ import annotations

import click

from . import emulator, plan, run, serve, suite, workspace
from .emulator import emulator_behaviour, family_settings


@click.group()
@click.version_option(package_name="cio-flows")
def main() -> None:
    """Run declarative YAML flows against Customer.io or its local emulator."""


main.add_command(plan.validate)
main.add_command(plan.plan)
main.add_command(run.run)
main.add_command(run.runs)
main.add_command(suite.test_command)
main.add_command(emulator.emulator)
main.add_command(workspace.workspace)
main.add_command(serve.serve)

__all__ = ["emulator_behaviour", "family_settings", "main"]
