"""`cio-flows test`: every flow under some paths as a test case, with reports and cassettes."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from .. import api
from ..errors import FlowInputError
from ..reporting.suite import SuiteConsole
from ..run.events import EXIT_INVALID
from ..scenarios import (
    Shard,
    recording,
    replaying,
    run_scenarios,
    suite_exit_cause,
    suite_exit_code,
    write_reports,
)
from .options import (
    emulator_option,
    emulator_workspace_option,
    env_file_option,
    exchange_output,
    fail_invalid,
    junit_option,
    region_option,
    report_option,
    root_option,
    run_options,
    timeout_option,
    trace_option,
    var_option,
    verbose_option,
)


def _shard(ctx, param, value: str | None) -> Shard | None:
    try:
        return None if value is None else Shard.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@region_option
@var_option
@env_file_option
@root_option
@click.option("--tag", multiple=True, help="Only flows with this tag (repeatable: any of them).")
@click.option(
    "--exclude-tag",
    multiple=True,
    metavar="T",
    help="Leave out flows with this tag (repeatable; pytest: -m 'not T').",
)
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
@timeout_option
@verbose_option
@trace_option
def test_command(
    paths,
    region,
    var,
    env_file,
    root,
    tag,
    exclude_tag,
    jobs,
    fail_fast,
    shard,
    report,
    junit,
    emulator: bool,
    emulator_workspace,
    record,
    replay,
    timeout,
    verbose,
    trace,
) -> None:
    """Run every flow under PATHS as a test case. Exit 1 if any fails, 2 if any is invalid
    (nothing is sent), 3 if Customer.io refused the keys, 4 if it stayed unavailable."""
    if replay is not None and (record is not None or emulator or emulator_workspace):
        raise click.UsageError("--replay sends nothing: it takes no --record or --emulator")
    around = recording(record) if record else replaying(replay) if replay else None
    options = replace(
        run_options(region, var, None, env_file, root, timeout),
        journal=False,  # test runs stay out of the journal
        emulator=emulator,
        emulator_workspace=emulator_workspace,
    )
    redact = api.redactor(options)
    try:  # as --trace: an unwritable report stops the suite before any flow sends
        api.check_report_paths(replace(options, report=report, junit=junit))
    except FlowInputError as exc:
        fail_invalid(exc, redact)
    console = SuiteConsole(click.echo, redact)
    started = time.monotonic()
    results = []
    try:
        with exchange_output(options, verbose, trace) as shown:
            for result in run_scenarios(
                paths,
                shown,
                tags=tag,
                exclude_tags=exclude_tag,
                shard=shard,
                jobs=jobs,
                fail_fast=fail_fast,
                reports=bool(report),
                around=around,
            ):
                console.flow(result)
                results.append(result)
    except FlowInputError as exc:  # the emulator's workspace
        fail_invalid(exc, redact)
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
