"""`cio-flows run` (one flow, journaled) and `cio-flows runs` (the journal's recent runs)."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from .. import api
from ..errors import FlowInputError, JournalError
from ..printable import printable
from ..reporting import ConsoleReporter
from ..run.events import EXIT_FAILED, EXIT_INVALID, EXIT_OK, Event, Listener, RunStarted
from .options import (
    check_query,
    data_option,
    emulator_option,
    emulator_workspace_option,
    env_file_option,
    exchange_output,
    fail_invalid,
    finite_number,
    flow_argument,
    junit_option,
    query_options,
    region_option,
    report_option,
    root_option,
    rows_option,
    run_options,
    timeout_option,
    trace_option,
    var_option,
    verbose_option,
)


@click.command()
@flow_argument
@region_option
@var_option
@data_option
@query_options
@rows_option
@env_file_option
@root_option
@emulator_option
@emulator_workspace_option
@click.option(
    "--emulator-ui",
    is_flag=True,
    help="Keep the emulator and its web page up after the run until Ctrl-C (implies --emulator).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Rows in parallel; steps within a row stay in order.",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes for a batched run [default: one per core when the data has 5,000"
    " rows or more, and the run does not use an emulator of its own].",
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
@click.option(
    "--resume-changed",
    is_flag=True,
    help="With --resume: accept a changed flow or data file; changed steps run again under new"
    " keys.",
)
@click.option(
    "--settle-grace",
    type=click.FloatRange(0),
    callback=finite_number,  # NaN passes FloatRange, and would poll Customer.io forever
    metavar="SECONDS",
    help="With --resume: how long an unknown send may take to show in Customer.io before it"
    " is sent again (default 60; 3 on a loopback address, an emulator).",
)
@click.option(
    "--changed",
    is_flag=True,
    help="Send only rows whose rendered requests differ from the last passed run of this flow"
    " (same journal); new row keys are sent.",
)
@click.option(
    "--ignore-once",
    is_flag=True,
    help="Run steps whose `once` key the journal already holds (may do them twice).",
)
@timeout_option
@report_option
@click.option(
    "--report-html",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write one self-contained HTML page: summary, steps, each failure with its request and"
    " answer (keys hidden).",
)
@junit_option
@verbose_option
@trace_option
def run(
    flow: Path,
    region,
    var,
    data,
    query,
    database,
    rows,
    env_file,
    root,
    emulator: bool,
    emulator_workspace,
    emulator_ui: bool,
    workers,
    processes,
    batch,
    resume_id,
    resend_unknown,
    resume_changed,
    settle_grace,
    changed,
    ignore_once,
    timeout,
    report,
    report_html,
    junit,
    verbose,
    trace,
) -> None:
    """Run FLOW. Exit 0 when every step succeeded, 1 when some failed, 2 on invalid input,
    3 when Customer.io refused the keys, 4 when it or the network stayed unavailable."""
    check_query(data, query, database)
    options = replace(
        run_options(region, var, data, env_file, root, timeout),
        query=query,
        database=database,
        rows=rows,
        changed=changed,
        workers=workers,
        processes=processes,
        batch=batch,
        resume=resume_id,
        resend_unknown=resend_unknown,
        resume_changed=resume_changed,
        settle_grace=settle_grace,
        ignore_once=ignore_once,
        report=report,
        report_html=report_html,
        junit=junit,
        emulator=emulator or emulator_ui,
        emulator_workspace=emulator_workspace,
    )
    masked = api.redactor(options)

    def redact(text: str) -> str:
        """Keys masked, control characters escaped (the text quotes servers and data)."""
        return printable(masked(text), lines=True)

    def write(line: str) -> None:
        click.echo(redact(line))

    def settling(sends: int, grace: float) -> None:
        # On stderr: stdout's first line stays the run id. The wait may be a minute.
        click.echo(
            f"settling {sends} unknown send(s) of run {resume_id} by reading Customer.io"
            f" (up to {grace:g} s)",
            err=True,
        )

    options = replace(options, on_settling=settling)

    from ..reporting.progress import ProgressReporter  # rich: loaded only when a run starts

    listeners: list[Listener] = [
        RunHeader(write, emulator=api.wants_emulator(options)),
        # The bar hears RunFinished first: it stops before the summary is printed under it.
        ProgressReporter(status=write),
        # A data row's ok steps: the progress bar; its skips: a count per step (rows with -v).
        ConsoleReporter(write, verbose_rows=False, verbose_skips=verbose),
    ]
    try:
        with exchange_output(options, verbose, trace) as shown:
            summary = api.run_flow(
                flow, shown, listeners, after_run=keep_emulator(write) if emulator_ui else None
            )
    except FlowInputError as exc:
        fail_invalid(exc, masked)
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
    if summary.interrupted and summary.journal_error is None:
        again = resume_command(flow, summary.run_id, data, var, env_file, region, rows)
        if emulator_workspace is not None:  # the same kind of server, as it was given
            again += f" --emulator-workspace {shlex.quote(str(emulator_workspace))}"
        elif emulator or emulator_ui:
            again += " --emulator"
        write(f"to go on where it stopped: {again}")
    if summary.exit_code not in (EXIT_OK, EXIT_FAILED):
        write(f"exit {summary.exit_code}: {summary.exit_cause}")
    if summary.abandoned:
        # A second signal: the journal is closed, but rows still wait on answers; a normal exit
        # would wait for their threads. Their sends not safe to repeat stay in flight (unknown).
        write("stopped without waiting for the requests in flight (second signal)")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(summary.exit_code)
    sys.exit(summary.exit_code)


def keep_emulator(write: Callable[[str], None]) -> Callable[[str], None]:
    """--emulator-ui: after the run, the emulator and its page stay up until Ctrl-C."""

    def wait(url: str) -> None:
        write(f"emulator web page: {url}/  (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            write("emulator stopped")

    return wait


def resume_command(
    flow: Path,
    run_id: str,
    data: Path | None,
    var: tuple[str, ...],
    env_file: tuple[str, ...] = (),
    region: str | None = None,
    rows: tuple[int | None, int | None] | None = None,
) -> str:
    """The exact command that resumes a run, with the options it was given (shell-quoted)."""
    words = ["cio-flows", "run", str(flow), "--resume", run_id]
    if data is not None:
        words += ["--data", str(data)]
    for item in var:
        words += ["--var", item]
    for item in env_file:
        words += ["--env-file", str(item)]
    if region:
        words += ["--region", region]
    if rows is not None:
        words += ["--rows", ":".join("" if bound is None else str(bound) for bound in rows)]
    return shlex.join(words)


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


@click.group(invoke_without_command=True)
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_context
def runs(ctx: click.Context, limit: int) -> None:
    """Recent runs from the journal, newest first; `runs show RUN_ID`, `runs prune`.

    The journal is $CIO_FLOWS_JOURNAL, else cio-flows/journal.db in the user data folder
    (~/.local/share on Linux), the same from every folder."""
    if ctx.invoked_subcommand is not None:
        return
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


@runs.command("show")
@click.argument("run_id")
def runs_show(run_id: str) -> None:
    """One run: flow, data fingerprint, options, per-step counts, failures, duration."""
    from ..reporting.run_detail import detail_lines

    try:
        detail = api.run_detail(run_id)
    except JournalError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    if detail is None:
        click.echo(f"error: no run {run_id!r} in the journal", err=True)
        sys.exit(EXIT_INVALID)
    for line in detail_lines(detail):
        click.echo(printable(line))


@runs.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(0),
    callback=finite_number,
    required=True,
    metavar="DAYS",
    help="Delete runs started more than DAYS ago (not `once` keys, not runs still going).",
)
def runs_prune(days: float) -> None:
    """Delete old runs from the journal and compact it."""
    try:
        pruned = api.prune_runs(days)
    except JournalError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    click.echo(f"pruned {len(pruned)} run(s) older than {days:g} day(s)")
