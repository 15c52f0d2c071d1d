"""`cio-flows validate` and `cio-flows plan`: commands that send nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import api
from ..errors import FlowInputError
from ..redact import Redactor
from ..run.events import EXIT_INVALID
from .options import (
    data_option,
    env_file_option,
    fail_invalid,
    flow_argument,
    region_option,
    root_option,
    run_options,
    var_option,
)


@click.command()
@flow_argument
@var_option
@data_option
@env_file_option
@root_option
def validate(flow: Path, var, data, env_file, root) -> None:
    """Check FLOW without sending anything."""
    options = run_options(None, var, data, env_file, root)
    redact = Redactor(api.secrets_of(options))
    try:
        run = api.validate_flow(flow, options)
    except FlowInputError as exc:
        fail_invalid(exc, redact)
    steps = len(run.flow.all_steps)
    click.echo(f"ok: {flow} is a valid flow '{run.flow.name}' with {steps} step(s)")


@click.command()
@flow_argument
@region_option
@var_option
@data_option
@env_file_option
@root_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "jsonl"]),
    default="text",
    help="jsonl (or json): one JSON object per request, batches as the run sends them.",
)
@click.option("--all", "show_all", is_flag=True, help="On a terminal, list every request.")
def plan(flow: Path, region, var, data, env_file, root, fmt, show_all) -> None:
    """Render and validate every step; print the requests a run would send. Sends nothing."""
    from ..reporting.plan_output import TERMINAL_LIMIT, PlanOutput
    from ..run.plan import Planner

    options = run_options(region, var, data, env_file, root)
    redact = Redactor(api.secrets_of(options))
    out = sys.stdout
    try:
        run = api.validate_flow(flow, options)
        terminal = fmt == "text" and out.isatty() and not show_all
        planner = Planner(run)
        output = PlanOutput(run, out, redact, fmt, TERMINAL_LIMIT if terminal else None)
        for item in planner:
            output.write(item)
    except FlowInputError as exc:
        fail_invalid(exc, redact)
    output.finish(planner.rows)
    out.flush()
    if output.summary.failures:  # rows the run would fail on: the input is invalid
        first = output.summary.failures[0].failure
        click.echo(redact(f"error: {first.message}"), err=True)
        sys.exit(EXIT_INVALID)
    missing = run.required_credentials()
    if missing and fmt == "text":
        click.echo(f"note: a run needs {', '.join(missing)} set", err=True)
