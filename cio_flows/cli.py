"""Command line: argument parsing only. Every command calls the same functions a notebook calls."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from . import api
from .errors import FlowInputError, JournalError
from .redact import Redactor
from .reporting import ConsoleReporter, JUnitSuite, ProgressReporter
from .run.events import Event, RunStarted
from .run.prepare import RunOptions
from .scenarios import run_scenarios
from .wire.families import FAMILIES
from .wire.transport import auth_description

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2  # 4 (journal failed mid-run): RunSummary.exit_code


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
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Rows in parallel; steps within a row stay in order.",
)
@click.option(
    "--batch/--no-batch",
    default=True,
    show_default=True,
    help="Coalesce identify/track over rows into batch calls.",
)
@click.option(
    "--resume",
    "resume_id",
    metavar="RUN_ID",
    help="Run again what did not succeed in run RUN_ID (same flow and rows).",
)
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="With --resume: also resend sends whose outcome is unknown (may send twice).",
)
@click.option("--report", type=click.Path(dir_okay=False), help="Write a JSON report here.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
def run(
    flow: Path,
    region,
    var,
    data,
    emulator: bool,
    workers,
    batch,
    resume_id,
    resend_unknown,
    report,
    junit,
) -> None:
    """Run FLOW. Exit 0 when every step succeeded, 1 when some failed, 2 on invalid input."""
    options = replace(
        _options(region, var, data),
        workers=workers,
        batch=batch,
        resume=resume_id,
        resend_unknown=resend_unknown,
        report=report,
        junit=junit,
        emulator=emulator,
    )
    redact = Redactor(api.secrets_of(options))

    def write(line: str) -> None:
        click.echo(redact(line))

    listeners = [
        RunHeader(write, emulator=emulator),
        ConsoleReporter(write, verbose_rows=False),  # a data row's ok steps: the progress bar
        ProgressReporter(),
    ]
    try:
        summary = api.run_flow(flow, options, listeners)
    except FlowInputError as exc:
        _fail_invalid(exc, redact)
    except JournalError as exc:  # unusable, no such run, or another process runs it
        click.echo(redact(f"error: {exc}"), err=True)
        sys.exit(EXIT_INVALID)
    if summary.journal_error is not None:
        click.echo(
            redact(
                f"error: {summary.journal_error}: stopped sending (a send is recorded before it"
                f" leaves); once the journal can be written: --resume {summary.run_id}"
            ),
            err=True,
        )
    sys.exit(summary.exit_code)


class RunHeader:
    """Listener: the run id first (what --resume takes), and the emulator's address."""

    def __init__(self, write, *, emulator: bool) -> None:
        self._write = write
        self._emulator = emulator

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._write(f"run id: {event.run_id}")
            if self._emulator:
                self._write(f"emulator: {event.targets['app']}")


@main.command()
@click.option("--limit", type=int, default=20, show_default=True)
def runs(limit: int) -> None:
    """Recent runs from the journal, newest first."""
    try:
        records = api.recent_runs(limit)
    except JournalError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    if not records:
        click.echo("no runs yet")
        return
    for r in records:
        counts = ", ".join(f"{v} {k}" for k, v in r.counts.items() if v)
        started = r.started_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{r.run_id}  {started}  {r.status:<11} {r.flow_name} ({r.flow_path})  {counts}")


@main.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@emulator_option
@click.option("--junit", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
def test_command(paths, emulator: bool, junit) -> None:
    """Run every flow under PATHS as a test case. Exit 1 if any fails, 2 if any is invalid."""
    suite = JUnitSuite("cio-flows")
    options = RunOptions(journal=False, emulator=emulator)  # test runs stay out of the journal
    redact = Redactor(api.secrets_of(options))
    results = list(run_scenarios(paths, options))
    for result in results:
        if result.invalid is not None:
            click.echo(redact(f"INVALID  {result.path}: {result.invalid.describe()}"))
            suite.add_error(result.name, str(result.path), result.invalid.describe())
            continue
        if result.summary is None:  # another flow is invalid, so nothing was sent
            click.echo(f"NOT RUN  {result.path}")
            suite.add_error(result.name, str(result.path), "not run: another flow is invalid")
            continue
        mark = "passed" if result.passed else "FAILED"
        click.echo(redact(f"{mark:<8} {result.name} ({result.path}) in {result.elapsed:.2f} s"))
        for failure in result.failures:
            click.echo(redact(f"         {failure}"))
        suite.add_flow(
            result.name,
            str(result.path),
            result.summary,
            [redact(f) for f in result.failures],
            result.elapsed,
        )
    if junit:
        suite.write(junit)
    passed = sum(r.passed for r in results)
    click.echo(f"{passed} passed, {len(results) - passed} failed")
    if any(r.invalid for r in results):
        sys.exit(EXIT_INVALID)
    sys.exit(EXIT_OK if passed == len(results) else EXIT_FAILED)


FAMILY_NAMES = FAMILIES


def family_settings(values: tuple[str, ...], option: str) -> dict[str, float]:
    """`FAMILY=NUMBER` items (FAMILY may be `all`) as {family: number}."""
    settings: dict[str, float] = {}
    for item in values:
        family, sep, number = item.partition("=")
        families = FAMILY_NAMES if family == "all" else (family,)
        if not sep or family not in (*FAMILY_NAMES, "all"):
            raise click.BadParameter(
                f"expected FAMILY=NUMBER with FAMILY one of all, {', '.join(FAMILY_NAMES)};"
                f" found {item!r}",
                param_hint=option,
            )
        try:
            value = float(number)
        except ValueError:
            raise click.BadParameter(f"{number!r} is not a number", param_hint=option) from None
        settings.update(dict.fromkeys(families, value))
    return settings


def emulator_behaviour(limits_preset, limit, latency, error_rate, drop_rate):
    """Emulator limits and faults from the command line: a preset and per-family overrides."""
    limits: object = limits_preset
    if limit:
        limits = family_settings(limit, "--limit")
    faults: dict[str, dict[str, float]] = {}
    for option, key, values in (
        ("--latency", "latency", latency),
        ("--error-rate", "error_rate", error_rate),
        ("--drop-rate", "drop_rate", drop_rate),
    ):
        for family, value in family_settings(values, option).items():
            faults.setdefault(family, {})[key] = value
    return limits, faults or None


@main.command()
@click.option("--port", type=int, default=8710, show_default=True)
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite file (default: in memory).")
@click.option("--workspace", type=click.Path(dir_okay=False, exists=True), help="Workspace YAML.")
@click.option("--empty", is_flag=True, help="Start with no people, segments or templates.")
@click.option(
    "--limits",
    "limits_preset",
    type=click.Choice(["customerio"]),
    help="Customer.io's documented rate limits (Track 100/s, Pipelines 1000/s, App 10/s).",
)
@click.option("--limit", multiple=True, metavar="FAMILY=PER_SECOND", help="A rate limit (429s).")
@click.option("--latency", multiple=True, metavar="FAMILY=SECONDS", help="Added to each answer.")
@click.option("--error-rate", multiple=True, metavar="FAMILY=SHARE", help="Share answered 500/503.")
@click.option(
    "--drop-rate", multiple=True, metavar="FAMILY=SHARE", help="Share of dropped connections."
)
def emulator(
    port: int, db, workspace, empty, limits_preset, limit, latency, error_rate, drop_rate
) -> None:
    """Run the local Customer.io emulator in the foreground (Ctrl-C to stop).

    FAMILY is track, pipelines, app or all; the workspace file can set the same limits and faults.
    """
    from .emulator import serve

    limits, faults = emulator_behaviour(limits_preset, limit, latency, error_rate, drop_rate)
    kwargs = {"workspace": {} if empty else workspace} if (empty or workspace) else {}
    try:
        serve(port=port, db_path=db, limits=limits, faults=faults, **kwargs)
    except OSError as exc:  # the port is taken, or not ours to bind
        click.echo(f"error: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_INVALID)
    except ValueError as exc:  # a workspace file or setting the emulator cannot use
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)


if __name__ == "__main__":
    main()
