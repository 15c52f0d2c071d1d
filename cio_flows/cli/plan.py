"""`cio-flows validate` and `cio-flows plan`: commands that send nothing."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from .. import api
from ..errors import FlowInputError
from ..run.events import EXIT_INVALID
from .options import (
    check_query,
    data_option,
    env_file_option,
    fail_invalid,
    flow_argument,
    query_options,
    region_option,
    root_option,
    rows_option,
    run_options,
    var_option,
)

SHOWN_FAILURES = 5  # failing rows `validate` names before it stops looking


@click.command()
@flow_argument
@var_option
@data_option
@env_file_option
@root_option
def validate(flow: Path, var, data, env_file, root) -> None:
    """Check FLOW without sending anything."""
    # An HTTP source (for_each.http) is not read: validate checks the flow offline.
    from ..run.plan import Planner  # only with --data: plain validate never loads the engine

    options = replace(run_options(None, var, data, env_file, root), read_sources=False)
    redact = api.redactor(options)
    try:
        run = api.validate_flow(flow, options)
        # Every row rendered and checked as `plan` does (the same walker, nothing sent).
        planner = Planner(run) if run.data is not None else None
        failures = planner.first_failures(SHOWN_FAILURES) if planner is not None else []
    except FlowInputError as exc:
        fail_invalid(exc, redact)
    if failures:
        for failure in failures:
            click.echo(redact(f"error: {failure.failure.message}"), err=True)
        rows = ", ".join(str(f.row) for f in failures if f.row is not None)
        more = " (and maybe more)" if len(failures) == SHOWN_FAILURES else ""
        click.echo(f"invalid: {flow}: failing row(s) {rows}{more}", err=True)
        sys.exit(EXIT_INVALID)
    steps = len(run.flow.all_steps)
    rows = f", {planner.rows:,} row(s) rendered and checked" if planner is not None else ""
    click.echo(f"ok: {flow} is a valid flow '{run.flow.name}' with {steps} step(s){rows}")


@click.command()
@flow_argument
@region_option
@var_option
@data_option
@query_options
@rows_option
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
@click.option(
    "--changed",
    is_flag=True,
    help="Only the rows `run --changed` would send (compared with the journal's last passed run).",
)
def plan(
    flow: Path, region, var, data, query, database, rows, env_file, root, fmt, show_all, changed
) -> None:
    """Render and validate every step; print the requests a run would send. Sends nothing."""
    from ..reporting.plan_output import TERMINAL_LIMIT, PlanOutput
    from ..run.plan import Planner

    check_query(data, query, database)
    options = replace(
        run_options(region, var, data, env_file, root), rows=rows, query=query, database=database
    )
    redact = api.redactor(options)
    out = sys.stdout
    try:
        run = api.validate_flow(flow, options)
        for note in run.dropped_rows.values():  # duplicate-key rows left out, before any row
            click.echo(redact(f"note: {note}"), err=True)
        if changed:
            click.echo(redact(f"note: {api.leave_out_unchanged(run)}"), err=True)
        terminal = fmt == "text" and out.isatty() and not show_all
        planner = Planner(run)
        output = PlanOutput(run, out, redact, fmt, TERMINAL_LIMIT if terminal else None)
        output.sources()
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
