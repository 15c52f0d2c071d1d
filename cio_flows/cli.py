"""Command line: argument parsing only. Every command calls the same functions a notebook calls."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from . import api
from .engine import RunOptions
from .errors import FlowInputError
from .redact import Redactor
from .reporting import ConsoleReporter
from .transport import auth_description

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, found {item!r}", param_hint="--var")
        parsed[name] = value
    return parsed


def _options(region, var, data) -> RunOptions:
    return RunOptions(region=region, vars=_parse_vars(var), data=Path(data) if data else None)


def _fail_invalid(exc: FlowInputError, redact: Redactor) -> None:
    click.echo(redact(f"error: {exc.describe()}"), err=True)
    sys.exit(EXIT_INVALID)


flow_argument = click.argument("flow", type=click.Path(dir_okay=False, path_type=Path))
region_option = click.option(
    "--region", type=click.Choice(["us", "eu"]), help="Overrides CUSTOMERIO_REGION and the flow."
)
var_option = click.option("--var", multiple=True, metavar="NAME=VALUE", help="Override a flow var.")
data_option = click.option(
    "--data",
    type=click.Path(dir_okay=False),
    help="CSV, JSON Lines or JSON rows; replaces for_each.",
)
emulator_option = click.option(
    "--emulator", is_flag=True, help="Start a local Customer.io emulator and run against it."
)


@click.group()
@click.version_option(package_name="cio-flows")
def main() -> None:
    """Run declarative YAML flows against Customer.io or its local emulator."""


@main.command()
@flow_argument
@var_option
@data_option
def validate(flow: Path, var, data) -> None:
    """Check FLOW without sending anything."""
    redact = Redactor(api.secrets_of(RunOptions()))
    try:
        run = api.validate_flow(flow, _options(None, var, data))
    except FlowInputError as exc:
        _fail_invalid(exc, redact)
    steps = len(run.flow.all_steps)
    click.echo(f"ok: {flow} is a valid flow '{run.flow.name}' with {steps} step(s)")


@main.command()
@flow_argument
@region_option
@var_option
@data_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def plan(flow: Path, region, var, data, fmt) -> None:
    """Render and validate every step; print the requests a run would send. Sends nothing."""
    options = _options(region, var, data)
    redact = Redactor(api.secrets_of(options))
    try:
        run = api.validate_flow(flow, options)
        for planned in run.plan():
            click.echo(redact(_format_planned(run, planned, fmt)))
    except FlowInputError as exc:
        _fail_invalid(exc, redact)
    missing = run.required_credentials()
    if missing and fmt == "text":
        click.echo(f"note: a run needs {', '.join(missing)} set", err=True)


def _format_planned(run, planned, fmt: str) -> str:
    step = planned.step
    if fmt == "json":
        record = {"step": step.name, "kind": step.kind, "row": planned.row_number}
        if planned.request is None:
            record["depends_on"] = list(planned.depends_on)
        else:
            request = planned.request
            record.update(
                method=request.method,
                url=_full_url(run, request),
                auth=auth_description(request.family),
                body=request.body,
            )
        return json.dumps(record, ensure_ascii=False)
    row = f"row {planned.row_number}: " if planned.row_number else ""
    header = f"{row}{step.name} ({step.kind})  {step.location}"
    if planned.request is None:
        return f"{header}\n  rendered when the flow runs: uses {', '.join(planned.depends_on)}\n"
    request = planned.request
    lines = [header, f"  {request.method} {_full_url(run, request)}"]
    lines.append(f"  auth: {auth_description(request.family)}")
    if request.body is not None:
        lines.append("  " + json.dumps(request.body, ensure_ascii=False, sort_keys=True))
    return "\n".join(lines) + "\n"


def _full_url(run, request) -> str:
    from urllib.parse import urlencode

    query = f"?{urlencode(request.params)}" if request.params else ""
    return run.endpoints.root(request.family) + request.path + query


@main.command()
@flow_argument
@region_option
@var_option
@data_option
@emulator_option
def run(flow: Path, region, var, data, emulator: bool) -> None:
    """Run FLOW. Exit 0 when every step succeeded, 1 when some failed, 2 on invalid input."""
    options = _options(region, var, data)
    with ExitStack() as stack:
        if emulator:
            options = stack.enter_context(api.emulated(options))
        redact = Redactor(api.secrets_of(options))

        def write(line: str) -> None:
            click.echo(redact(line))

        try:
            prepared = api.prepare(flow, options)
            prepared.preflight()
        except FlowInputError as exc:
            _fail_invalid(exc, redact)
        write(f"run id: {prepared.run_id}")
        if emulator:
            write(f"emulator: {prepared.endpoints.app}")
        summary = api.execute(prepared, [ConsoleReporter(write)])
    sys.exit(summary.exit_code)


@main.command()
@click.option("--port", type=int, default=8710, show_default=True)
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite file (default: in memory).")
@click.option("--workspace", type=click.Path(dir_okay=False, exists=True), help="Workspace YAML.")
def emulator(port: int, db, workspace) -> None:
    """Run the local Customer.io emulator in the foreground (Ctrl-C to stop)."""
    from .emulator import serve

    kwargs = {"workspace": workspace} if workspace else {}
    serve(port=port, db_path=db, **kwargs)


if __name__ == "__main__":
    main()
