"""Command line: argument parsing only. Every command calls the same functions a notebook calls."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import click

from . import api
from .errors import FlowInputError, JournalError
from .redact import Redactor
from .reporting import ConsoleReporter, TraceFile, VerboseExchanges
from .reporting.suite import SuiteConsole
from .reporting.trace import all_of
from .run.events import EXIT_FAILED, EXIT_INVALID, EXIT_OK, Event, RunStarted
from .run.prepare import RunOptions
from .scenarios import (
    Shard,
    recording,
    replaying,
    run_scenarios,
    suite_exit_cause,
    suite_exit_code,
    write_reports,
)
from .wire.families import FAMILIES

# Exit statuses: 0 ok, 1 failed, 2 invalid input; 3 and 4 (refused key, no answer) come from
# RunSummary.exit_code.


def _parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, found {item!r}", param_hint="--var")
        parsed[name] = value
    return parsed


def _options(region, var, data, env_file=()) -> RunOptions:
    """Options from the common flags; --env-file values under the process environment."""
    try:
        environ = api.environ_with_files(env_file) if env_file else None
    except FlowInputError as exc:
        _fail_invalid(exc, Redactor())
    return RunOptions(
        region=region,
        vars=_parse_vars(var),
        data=Path(data) if data else None,
        environ=environ,
    )


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
emulator_workspace_option = click.option(
    "--emulator-workspace",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The emulator loads this workspace file (implies --emulator).",
)
env_file_option = click.option(
    "--env-file",
    multiple=True,
    type=click.Path(path_type=Path),
    help="NAME=VALUE lines (dotenv) read as environment; the process environment wins.",
)
verbose_option = click.option(
    "-v", "--verbose", is_flag=True, help="Each request and answer on stderr, keys hidden."
)
trace_option = click.option(
    "--trace",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Each request and answer as JSON Lines, bodies whole, keys hidden.",
)
report_option = click.option(
    "--report", type=click.Path(dir_okay=False), help="Write a JSON report here."
)
junit_option = click.option(
    "--junit", type=click.Path(dir_okay=False), help="Write JUnit XML here."
)


@contextmanager
def exchange_output(options: RunOptions, verbose: bool, trace: Path | None) -> Iterator[RunOptions]:
    """Options whose transport shows each exchange (-v on stderr, --trace to a file)."""
    if not verbose and trace is None:
        yield options
        return
    redact = Redactor(api.secrets_of(options))
    trace_file = None
    if trace is not None:
        try:
            trace_file = TraceFile(trace, redact)
        except OSError as exc:
            click.echo(f"error: cannot write the trace {trace}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_INVALID)
    hook = all_of([VerboseExchanges(redact) if verbose else None, trace_file])
    try:
        yield replace(options, transport=replace(options.transport, on_exchange=hook))
    finally:
        if trace_file is not None:
            trace_file.close()
            if trace_file.error is not None:
                click.echo(
                    f"warning: the trace {trace} is incomplete: {trace_file.error}", err=True
                )


@click.group()
@click.version_option(package_name="cio-flows")
def main() -> None:
    """Run declarative YAML flows against Customer.io or its local emulator."""


@main.command()
@flow_argument
@var_option
@data_option
@env_file_option
def validate(flow: Path, var, data, env_file) -> None:
    """Check FLOW without sending anything."""
    options = _options(None, var, data, env_file)
    redact = Redactor(api.secrets_of(options))
    try:
        run = api.validate_flow(flow, options)
    except FlowInputError as exc:
        _fail_invalid(exc, redact)
    steps = len(run.flow.all_steps)
    click.echo(f"ok: {flow} is a valid flow '{run.flow.name}' with {steps} step(s)")


@main.command()
@flow_argument
@region_option
@var_option
@data_option
@env_file_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "jsonl"]),
    default="text",
    help="jsonl (or json): one JSON object per request, batches as the run sends them.",
)
@click.option("--all", "show_all", is_flag=True, help="On a terminal, list every request.")
def plan(flow: Path, region, var, data, env_file, fmt, show_all) -> None:
    """Render and validate every step; print the requests a run would send. Sends nothing."""
    from .reporting.plan_output import TERMINAL_LIMIT, PlanOutput
    from .run.plan import Planner

    options = _options(region, var, data, env_file)
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
        _fail_invalid(exc, redact)
    output.finish(planner.rows)
    out.flush()
    if output.summary.failures:  # rows the run would fail on: the input is invalid
        first = output.summary.failures[0].failure
        click.echo(redact(f"error: {first.message}"), err=True)
        sys.exit(EXIT_INVALID)
    missing = run.required_credentials()
    if missing and fmt == "text":
        click.echo(f"note: a run needs {', '.join(missing)} set", err=True)


@main.command()
@flow_argument
@region_option
@var_option
@data_option
@env_file_option
@emulator_option
@emulator_workspace_option
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
@report_option
@junit_option
@verbose_option
@trace_option
def run(
    flow: Path,
    region,
    var,
    data,
    env_file,
    emulator: bool,
    emulator_workspace,
    workers,
    batch,
    resume_id,
    resend_unknown,
    report,
    junit,
    verbose,
    trace,
) -> None:
    """Run FLOW. Exit 0 when every step succeeded, 1 when some failed, 2 on invalid input,
    3 when Customer.io refused the keys, 4 when it or the network stayed unavailable."""
    options = replace(
        _options(region, var, data, env_file),
        workers=workers,
        batch=batch,
        resume=resume_id,
        resend_unknown=resend_unknown,
        report=report,
        junit=junit,
        emulator=emulator,
        emulator_workspace=emulator_workspace,
    )
    redact = Redactor(api.secrets_of(options))

    def write(line: str) -> None:
        click.echo(redact(line))

    from .reporting.progress import ProgressReporter  # rich: loaded only when a run starts

    listeners = [
        RunHeader(write, emulator=api.wants_emulator(options)),
        ConsoleReporter(write, verbose_rows=False),  # a data row's ok steps: the progress bar
        ProgressReporter(),
    ]
    try:
        with exchange_output(options, verbose, trace) as shown:
            summary = api.run_flow(flow, shown, listeners)
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
    if summary.exit_code not in (EXIT_OK, EXIT_FAILED):
        write(f"exit {summary.exit_code}: {summary.exit_cause}")
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


def _shard(ctx, param, value: str | None) -> Shard | None:
    try:
        return None if value is None else Shard.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@region_option
@var_option
@env_file_option
@click.option("--tag", multiple=True, help="Only flows with this tag (repeatable: any of them).")
@click.option(
    "--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Flows at once."
)
@click.option("--fail-fast", is_flag=True, help="Start no flow after the first that fails.")
@click.option(
    "--shard", metavar="K/N", callback=_shard, help="Run the K-th of N shares of the flows."
)
@report_option
@junit_option
@emulator_option
@emulator_workspace_option
@click.option(
    "--record",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write one cassette per flow under DIR (keys scrubbed; run id, now(), uuid() kept).",
)
@click.option(
    "--replay",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Answer every request from the cassettes under DIR, with no network; a flow whose"
    " requests differ fails.",
)
@verbose_option
@trace_option
def test_command(
    paths,
    region,
    var,
    env_file,
    tag,
    jobs,
    fail_fast,
    shard,
    report,
    junit,
    emulator: bool,
    emulator_workspace,
    record,
    replay,
    verbose,
    trace,
) -> None:
    """Run every flow under PATHS as a test case. Exit 1 if any fails, 2 if any is invalid
    (nothing is sent), 3 if Customer.io refused the keys, 4 if it stayed unavailable."""
    if replay is not None and (record is not None or emulator or emulator_workspace):
        raise click.UsageError("--replay sends nothing: it takes no --record or --emulator")
    around = recording(record) if record else replaying(replay) if replay else None
    options = replace(
        _options(region, var, None, env_file),
        journal=False,  # test runs stay out of the journal
        emulator=emulator,
        emulator_workspace=emulator_workspace,
    )
    redact = Redactor(api.secrets_of(options))
    console = SuiteConsole(click.echo, redact)
    started = time.monotonic()
    results = []
    try:
        with exchange_output(options, verbose, trace) as shown:
            for result in run_scenarios(
                paths,
                shown,
                tags=tag,
                shard=shard,
                jobs=jobs,
                fail_fast=fail_fast,
                reports=bool(report),
                around=around,
            ):
                console.flow(result)
                results.append(result)
    except FlowInputError as exc:  # the emulator's workspace
        _fail_invalid(exc, redact)
    if not results and shard is None:
        click.echo(f"error: no flow selected under {', '.join(map(str, paths))}", err=True)
        sys.exit(EXIT_INVALID)
    results.sort(key=lambda r: r.path)  # as collected: reports do not depend on timing
    code = suite_exit_code(results)
    write_reports(
        results, elapsed=time.monotonic() - started, redact=redact, report=report, junit=junit
    )
    console.outcome(results, code, suite_exit_cause(results))
    sys.exit(code)


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
    "--demo-people",
    type=click.IntRange(1, 5_000_000),
    metavar="N",
    help="A generated demo workspace of N people, with segments and a message history.",
)
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
    port: int,
    db,
    workspace,
    empty,
    demo_people,
    limits_preset,
    limit,
    latency,
    error_rate,
    drop_rate,
) -> None:
    """Run the local Customer.io emulator in the foreground (Ctrl-C to stop).

    FAMILY is track, pipelines, app or all; the workspace file can set the same limits and faults.
    """
    from .emulator import serve

    limits, faults = emulator_behaviour(limits_preset, limit, latency, error_rate, drop_rate)
    kwargs = {"workspace": {} if empty else workspace} if (empty or workspace) else {}
    if demo_people is not None:
        if empty or workspace:
            message = "error: --demo-people cannot be combined with --workspace or --empty"
            click.echo(message, err=True)
            sys.exit(EXIT_INVALID)
        kwargs = {"workspace": {"demo": {"people": demo_people}}}
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
