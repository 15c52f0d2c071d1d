"""Options and helpers shared by the commands: the common flags, RunOptions from them, and
each exchange shown (-v) or written (--trace)."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .. import api
from ..errors import FlowInputError
from ..printable import printable
from ..redact import Redactor
from ..reporting import TraceFile, VerboseExchanges
from ..reporting.trace import all_of
from ..run.events import EXIT_INVALID
from ..run.prepare import RunOptions

# Exit statuses: 0 ok, 1 failed, 2 invalid input; 3 and 4 (refused key, no answer) come from
# RunSummary.exit_code.


def parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    """`--var NAME=VALUE` items as {name: value}."""
    parsed = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, found {item!r}", param_hint="--var")
        parsed[name] = value
    return parsed


def run_options(
    region, var, data, env_file=(), root: str | None = None, timeout: float | None = None
) -> RunOptions:
    """Options from the common flags; --env-file values under the process environment."""
    try:
        environ = api.environ_with_files(env_file) if env_file else None
    except FlowInputError as exc:
        fail_invalid(exc, Redactor())
    options = RunOptions(
        region=region,
        vars=parse_vars(var),
        data=Path(data) if data else None,
        environ=environ,
        root=Path(root) if root else None,
    )
    if timeout is not None:
        options = replace(options, transport=replace(options.transport, timeout=timeout))
    return options


def fail_invalid(exc: FlowInputError, redact: Redactor) -> None:
    """Print the input error (keys hidden) and exit 2."""
    click.echo(printable(redact(f"error: {exc.describe()}"), lines=True), err=True)
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


def parse_rows(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[int | None, int | None] | None:
    """`--rows A:B`, `A:` or `:B`: data rows A to B, 1-based and inclusive."""
    if value is None:
        return None
    first, sep, last = value.partition(":")
    try:
        if not sep:
            raise ValueError
        bounds = (int(first) if first.strip() else None, int(last) if last.strip() else None)
    except ValueError:
        raise click.BadParameter(f"expected A:B, A: or :B (row numbers), found {value!r}") from None
    low, high = bounds
    if (low is not None and low < 1) or (high is not None and high < 1):
        raise click.BadParameter(f"rows are numbered from 1, found {value!r}")
    if low is not None and high is not None and high < low:
        raise click.BadParameter(f"the last row comes before the first: {value!r}")
    return bounds


def query_options(function: Any) -> Any:
    """--query SQL and --database URL: rows from a query instead of a file."""
    function = click.option(
        "--database",
        metavar="URL",
        help="With --query: a SQLAlchemy URL to run it in (sqlite:///x.db, postgresql://...;"
        " needs pip install 'cio-flows[sql]' and the driver). Default: DuckDB, in process.",
    )(function)
    return click.option(
        "--query",
        metavar="SQL",
        help="Rows from this SQL query; replaces for_each. Without --database it runs in"
        " DuckDB, which reads CSV, Parquet and JSON files by path.",
    )(function)


def check_query(data: Any, query: str | None, database: str | None) -> None:
    if query is not None and data is not None:
        raise click.UsageError("--query and --data both give the rows: use one")
    if database is not None and query is None:
        raise click.UsageError("--database needs --query (the SQL that reads the rows)")


rows_option = click.option(
    "--rows",
    metavar="A:B",
    callback=parse_rows,
    help="Only data rows A to B (1-based, inclusive; A: or :B): a canary slice.",
)
root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    help="The project folder `use:` may read flows from (default: the current folder when the"
    " flow is in it, else the flow's folder).",
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


def finite_number(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"expected a finite number, found {value}")
    return value


timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(0, 24 * 3600, min_open=True),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    callback=finite_number,
    help="Longest wait for one answer, from sending to its last byte; then the step fails.",
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
    redact = api.redactor(options)
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
