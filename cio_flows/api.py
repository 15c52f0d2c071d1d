"""The public functions the CLI, notebooks and tests call.

`run_flow` is the one front door for running a flow: every caller gets the same journal,
resume, reports, emulator, redaction and Ctrl-C/SIGTERM handling.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import FlowInputError
from .flow.loader import load_flow
from .redact import Redactor
from .run.events import Listener, RunSummary
from .run.plan import (
    Planned,
    PlannedFailure,
    PlannedRequest,
    Planner,
    preflight,
    preflight_static,
)
from .run.prepare import PreparedRun, RunOptions, secrets_in, with_endpoint_root

# What only running a flow or reading the journal needs (the transport and requests, the
# executor, the journal, the report writers) loads in the functions that use it, so
# `cio-flows validate`, `plan` and `--help` stay light.
if TYPE_CHECKING:
    from .run.executor import InFlightMarker, PreviousLookup
    from .run.journal import RunRecord
    from .run.journal_admin import RunDetail
    from .run.once import OnceBook


def prepare(flow_path: str | Path, options: RunOptions | None = None) -> PreparedRun:
    """Load and check a flow; raises FlowInputError (exit 2 material)."""
    return PreparedRun(load_flow(flow_path, (options or RunOptions()).root), options)


def validate_flow(flow_path: str | Path, options: RunOptions | None = None) -> PreparedRun:
    """Every check that needs no credentials and sends nothing."""
    run = prepare(flow_path, options)
    preflight_static(run)
    return run


def plan_flow(
    flow_path: str | Path, options: RunOptions | None = None
) -> Iterator[PlannedRequest | PlannedFailure]:
    """The requests a run would send (PlannedRequest: batches where the run batches, a step that
    reads an earlier answer with its `depends_on`) and the rows it would fail on
    (PlannedFailure), in the run's order; sends nothing. See run/plan.py."""
    run = validate_flow(flow_path, options)
    return _listed(Planner(run))


def _listed(items: Iterable[Planned]) -> Iterator[PlannedRequest | PlannedFailure]:
    """What a plan lists: requests and failing rows (skipped steps are only counted)."""
    for item in items:
        if isinstance(item, PlannedRequest | PlannedFailure):
            yield item


def redactor(options: RunOptions) -> Redactor:
    """The one redactor recipe for a run's outputs: see secrets_of."""
    return Redactor(secrets_of(options))


def run_flow(
    flow: str | Path,
    options: RunOptions | None = None,
    listeners: Iterable[Listener] = (),
    *,
    after_run: Callable[[str], None] | None = None,
) -> RunSummary:
    """Run a flow as `cio-flows run` does, and return its RunSummary (`run_id`, `exit_code`).

    options.journal: every (row, step) outcome recorded (default $CIO_FLOWS_JOURNAL, else
      cio-flows/journal.db in the user data folder; False or None for no journal, and then no
      resume).
    options.resume = RUN_ID: run again what did not succeed in that run, with its vars and data
      unless given. Sends whose outcome is unknown are first looked up in Customer.io
      (options.settle_grace; run/settle.py): found ones are recorded ok, ones absent after the
      grace period are sent again, the rest stay unknown unless options.resend_unknown.
    options.ignore_once: run steps whose `once` key the journal already holds.
    options.report / options.junit / options.report_html: a JSON report / JUnit XML / one
      self-contained HTML page (failures with their request and answer) written at the end.
    options.rows = (A, B): only data rows A to B (1-based, inclusive; None: open).
    options.changed: leave out rows whose rendered requests equal those of the last passed run
      of the flow in the journal (run/changed.py).
    options.query (and options.database, a SQLAlchemy URL): rows from SQL, in DuckDB without a
      URL (run/query_source.py); `data` may also be a .parquet file.
    options.emulator: run against an in-process emulator started for this run (loading
      options.emulator_workspace when set, which implies it).
    listeners: called with every event (RunStarted, StepFinished, RowFinished, RunFinished).
    after_run: with an emulator, called with its root URL once the run is settled, while the
      emulator (and its web page) still runs; `--emulator-ui` waits there for Ctrl-C.

    Raises FlowInputError (invalid flow, vars, data or credentials) and JournalError (the journal
    cannot be used, the run is not in it, or another process runs it) before anything is sent:
    exit 2 material. A journal that fails mid-run stops sending: summary.exit_code is then 4.
    SIGTERM stops the run as Ctrl-C does (when called from the main thread).
    """
    from .reporting.html_report import HtmlReport
    from .reporting.trace import all_of
    from .run.changed import hash_rows
    from .run.processes import ProcessRun, process_count
    from .run.session import RunSession, sigterm_as_ctrl_c

    options = options or RunOptions()
    with ExitStack() as stack:
        stack.enter_context(sigterm_as_ctrl_c())
        session = stack.enter_context(RunSession(options, redactor(options)))
        if options.changed and session.path is None:
            raise FlowInputError(
                "--changed compares with earlier runs in the journal, and the journal is off",
                expected="a journal (RunOptions.journal)",
                found="journal off",
            )
        options = session.options
        emulator_root = None
        if wants_emulator(options):
            options = stack.enter_context(emulated(options))
            emulator_root = _environ(options)["CUSTOMERIO_APP_URL"]  # every family's root
        redact = redactor(options)
        html_report = None
        if options.report_html:  # it sees each exchange, to show a failure's request and answer
            html_report = HtmlReport(options.report_html, redactor=redact)
            hook = all_of([options.transport.on_exchange, html_report.exchange])
            options = replace(options, transport=replace(options.transport, on_exchange=hook))
        run = prepare(flow, options)
        check_report_paths(options)  # as --trace: an unwritable report stops the run unsent
        changed = session.reconcile(run, flow)  # on resume: the same flow and data, or re-keyed
        if changed is not None:
            run = PreparedRun(changed, options)
        preflight(run)
        session.start(run, flow)  # locks the run id; nothing was sent before
        if options.changed and session.path is not None:
            # every row hashed before sending, to leave out those whose hashes equal the last
            # passed run's; the hashes are kept then (a resume keeps them for all rows too)
            hashed = hash_rows(run, session.path, changed_only=True, checked=True)
            if hashed.not_kept:  # said before the first row, as --changed's note is
                run.notes.append(f"journal {session.path}: {hashed.not_kept}")
            run.leave_out(hashed.unchanged, hashed.note())
        else:  # the run's request hashes travel with its outcomes into the journal
            run.keep_request_hashes = session.path is not None
        settled = session.settle_unknown(run)  # a resume: reads Customer.io for unknown sends
        others: list[Listener] = reports(options, redact)
        if html_report is not None:
            others.append(html_report)
        others += listeners
        processes = process_count(run, options.processes, emulated=emulator_root is not None)
        if processes > 1:
            summary = ProcessRun(
                run,
                processes,
                session,
                [*session.listeners(outcomes=False), *others],
                resend_unknown=options.resend_unknown,
                settled=settled,
            ).execute()
        else:
            summary = execute(
                run,
                [*session.listeners(), *others],
                previous=session.previous,
                resend_unknown=options.resend_unknown,
                in_flight=session.in_flight(),
                once=session.once_book(),
                settled=settled,
            )
        summary = session.settle(summary)
        if after_run is not None and emulator_root is not None:
            after_run(emulator_root)
        return summary


def leave_out_unchanged(run: PreparedRun, journal: str | Path | bool = True) -> str:
    """`plan --changed`: leave out of `run` the rows a `run --changed` would not send (their
    requests equal the journal's last passed run's); what was done, in words."""
    from .run.changed import hash_rows
    from .run.session import journal_path

    path = journal_path(journal)
    if path is None:
        raise FlowInputError("--changed compares with the journal, and the journal is off")
    hashed = hash_rows(run, path, changed_only=True, record=False)
    run.leave_out(hashed.unchanged, hashed.note())
    return hashed.note()


def check_report_paths(options: RunOptions) -> None:
    """FlowInputError (exit 2) when the JSON report or JUnit file could not be written."""
    from .reporting.files import check_writable

    given = (
        ("--report", options.report),
        ("--junit", options.junit),
        ("--report-html", options.report_html),
    )
    for flag, path in given:
        if path:
            try:
                check_writable(path)
            except OSError as exc:
                raise FlowInputError(
                    f"{flag}: cannot write {path}: {exc.strerror or exc}",
                    expected="a file that can be written",
                    found=str(path),
                ) from None


def reports(options: RunOptions, redactor: Redactor) -> list[Listener]:
    """The report writers options ask for (JSON, JUnit), every text redacted."""
    from .reporting import JsonReport, JUnitReport

    found: list[Listener] = []
    if options.report:
        found.append(JsonReport(options.report, redactor=redactor))
    if options.junit:
        found.append(JUnitReport(options.junit, redactor=redactor))
    return found


def execute(
    run: PreparedRun,
    listeners: Iterable[Listener] = (),
    *,
    previous: PreviousLookup | None = None,
    resend_unknown: bool = False,
    in_flight: InFlightMarker | None = None,
    once: OnceBook | None = None,
    settled: list[dict[str, str]] | None = None,
) -> RunSummary:
    """Run a prepared (and preflighted) flow, with no journal or reports of its own.

    previous: on resume, each row's outcomes from the earlier attempt (steps that succeeded are
    not sent again; sends whose outcome is unknown are not resent unless resend_unknown).
    in_flight: called (row key, step key) before each send that is not safe to repeat, to record
    it durably first (Journal.in_flight_marker).
    once: claims of `once` keys (RunSession.once_book); None runs every step.
    settled: the unknown sends a resume settled, for the summary (RunSession.settle_unknown).
    """
    from .run.executor import Executor
    from .wire.transport import Transport

    with Transport(run.endpoints, run.credentials, run.options.transport) as transport:
        executor = Executor(
            run,
            transport,
            list(listeners),
            workers=run.options.workers,
            batch=run.options.batch,
            previous=previous,
            resend_unknown=resend_unknown,
            in_flight=in_flight,
            once=once,
        )
        executor.summary.settled = list(settled or [])
        return executor.execute()


def recent_runs(limit: int = 20, journal: str | Path | bool = True) -> list[RunRecord]:
    """The journal's most recent runs, newest first (`cio-flows runs`); JournalError if the
    journal cannot be used."""
    from .run.journal import Journal
    from .run.session import journal_path

    path = journal_path(journal)
    if path is None:
        return []
    with Journal(path) as opened:
        return opened.runs(limit)


def run_detail(run_id: str, journal: str | Path | bool = True) -> RunDetail | None:
    """One run from the journal (`cio-flows runs show`): its record, inputs, per-step counts
    and first failures; None when the journal has no such run."""
    from .run.journal import Journal
    from .run.journal_admin import run_detail as run_detail_of
    from .run.session import journal_path

    path = journal_path(journal)
    if path is None:
        return None
    with Journal(path) as opened:
        return run_detail_of(opened.query, run_id)


def prune_runs(older_than_days: float, journal: str | Path | bool = True) -> list[str]:
    """Delete runs older than that from the journal (`cio-flows runs prune`); their ids."""
    from .run.journal_admin import prune_runs as prune_journal
    from .run.session import journal_path

    path = journal_path(journal)
    return [] if path is None else prune_journal(path, older_than_days)


def wants_emulator(options: RunOptions) -> bool:
    """Whether a run starts its own emulator: `emulator`, or a workspace file for one."""
    return bool(options.emulator or options.emulator_workspace)


@contextmanager
def emulated(options: RunOptions | None = None, **emulator_args) -> Iterator[RunOptions]:
    """Start an in-process emulator and yield options pointing every family at it.

    The emulator accepts the keys in the CUSTOMERIO_* variables when set, else its demo keys,
    and loads options.emulator_workspace unless emulator_args name a `workspace`. A workspace
    it cannot load raises FlowInputError (exit 2) naming the file. The options yielded have
    `emulator` False and no workspace: they already point at a running emulator.
    """
    from .emulator import Credentials as EmulatorCredentials
    from .emulator import Emulator, WorkspaceError

    options = options or RunOptions()
    if options.emulator_workspace is not None:
        emulator_args.setdefault("workspace", Path(options.emulator_workspace))
    credentials = EmulatorCredentials.from_env(_environ(options))
    try:
        emulator = Emulator(credentials=credentials, **emulator_args)
    except WorkspaceError as exc:
        raise FlowInputError(f"emulator workspace: {exc}") from None
    with emulator:
        yield replace(options_for_emulator(emulator, options), emulator_workspace=None)


def environ_with_files(
    env_files: Iterable[str | Path], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a run sees with dotenv files (`--env-file`): each file's NAME=VALUE
    lines, a later file over an earlier one, and the process environment over them all.
    Values are taken as written: `PUBLIC=${CUSTOMERIO_APP_TOKEN}` would copy a key into a
    variable no mask knows of. A file that cannot be read raises FlowInputError naming it."""
    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    for env_file in map(Path, env_files):
        if not env_file.is_file():
            raise FlowInputError(f"env file {env_file}: no such file")
        try:
            values = dotenv_values(env_file, encoding="utf-8", interpolate=False)
        except (OSError, UnicodeDecodeError) as exc:
            raise FlowInputError(f"env file {env_file}: cannot read it ({exc})") from None
        merged.update({name: value for name, value in values.items() if value is not None})
    return {**merged, **(os.environ if environ is None else environ)}


def options_for_emulator(emulator, options: RunOptions | None = None) -> RunOptions:
    """Options whose endpoints and keys are those of a running emulator."""
    options = with_endpoint_root(options or RunOptions(), emulator.url)
    return replace(
        options, environ=_with_keys(_environ(options), emulator.credentials), emulator=False
    )


def _with_keys(environ: Mapping[str, str], creds) -> dict[str, str]:
    """environ with the CUSTOMERIO_* keys of an emulator's credentials.

    With no key in the environment every family gets the emulator's demo keys. With some, a
    run gets only those, as against Customer.io: Track-only keys send people and events to the
    Track API (its 150-byte ids and 1,000-byte values), a Pipelines key to Pipelines.
    """
    keys = {
        "CUSTOMERIO_SITE_ID": creds.site_id,
        "CUSTOMERIO_TRACK_TOKEN": creds.track_key,
        "CUSTOMERIO_PIPELINES_KEY": creds.pipelines_key,
        "CUSTOMERIO_APP_TOKEN": creds.app_key,
    }
    held = {name for name in keys if name != "CUSTOMERIO_SITE_ID" and environ.get(name)}
    if held:
        if "CUSTOMERIO_TRACK_TOKEN" in held:
            held.add("CUSTOMERIO_SITE_ID")
        keys = {name: value for name, value in keys.items() if name in held}
    return {**environ, **keys}


def _environ(options: RunOptions) -> Mapping[str, str]:
    return os.environ if options.environ is None else options.environ


def secrets_of(options: RunOptions) -> list[str]:
    """What outputs mask: the keys as the transport sends them, and the value of every variable
    whose name says KEY, TOKEN, SECRET or PASSWORD; with `emulator`, the keys it will accept."""
    environ = _environ(options)
    if wants_emulator(options):
        from .emulator import Credentials as EmulatorCredentials

        environ = _with_keys(environ, EmulatorCredentials.from_env(environ))
    return secrets_in(environ)
