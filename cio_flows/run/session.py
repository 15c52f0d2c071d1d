"""The journal side of one run: opened and checked before anything is sent, the run id locked
while it executes, and on resume the earlier attempt looked up (its vars, data and outcomes),
its unknown sends settled by reading Customer.io (settle.py). `once` keys are claimed here too.

`api.run_flow` opens a session for every caller (CLI, notebooks, tests), so what the journal
guarantees (nothing sent twice after a crash, one process per run id) holds for all of them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import FlowInputError, JournalError
from ..flow.model import Flow
from ..redact import Redactor
from ..wire.transport import Transport
from .events import Listener, RunSummary
from .executor import InFlightMarker, PreviousLookup
from .journal import InFlightSend, Journal, default_journal_path
from .once import OnceBook
from .prepare import PreparedRun, RunOptions
from .resume_inputs import RunInputs, changes, refuse_changes, rekeyed, run_inputs, stored_for
from .settle import (
    ABSENT,
    FOUND,
    REMOTE_SKEW,
    Settlement,
    Settler,
    default_grace,
    is_local,
    unreadable,
)
from .steps import SETTLED_ABSENT, SETTLED_FOUND, PreviousOutcome


class UnknownRunError(JournalError):
    """A resume names a run id the journal does not hold."""

    def __init__(self, path: object, run_id: str) -> None:
        super().__init__(path, f"has no run '{run_id}'")
        self.args = (f"no run '{run_id}' in the journal {path}",)
        self.run_id = run_id


def journal_path(setting: str | Path | bool | None) -> Path | None:
    """Where RunOptions.journal says to record: True is the default journal
    ($CIO_FLOWS_JOURNAL, else the user data folder's), a path is that file, False/None none."""
    if setting is None or setting is False:
        return None
    if setting is True:
        return default_journal_path()
    return Path(setting)


def stored_options(options: RunOptions) -> dict[str, Any]:
    """What the journal keeps of a run's options; a resume reuses vars and data from it."""
    return {
        "vars": dict(options.vars),
        "data": str(options.data or "") or None,
        "rows": list(options.rows) if options.rows is not None else None,
        "changed": options.changed,
        "query": options.query,
        # a URL with a password is not kept: a resume is then given --database again
        "database": options.database if _keepable_url(options.database) else None,
        "database_given": options.database is not None,
        "workers": options.workers,
        "batch": options.batch,
        "processes": options.processes,
    }


def _keepable_url(url: str | None) -> bool:
    """A database URL the journal may keep: one without a password (user:password@)."""
    if url is None:
        return False
    _, _, rest = url.partition("://")
    credentials = rest.split("@", 1)[0] if "@" in rest else ""
    return ":" not in credentials


@dataclass(frozen=True)
class WorkerJournal:
    """What a worker process writes the journal with (RunSession.for_worker)."""

    journal: Journal
    listener: Listener
    in_flight: InFlightMarker
    previous: PreviousLookup | None


class RunSession:
    """One run's journal. `options` (resolved for a resume) is what the run must use.

    Raises JournalError (exit 2 material, nothing sent) when the journal cannot be opened or a
    resumed run is not in it; ValueError for a resume without a journal.
    """

    def __init__(self, options: RunOptions, redactor: Redactor | None = None) -> None:
        self.path = journal_path(options.journal)
        self.journal: Journal | None = None
        self.previous: PreviousLookup | None = None
        self.run_id: str | None = None
        self._stored_inputs: RunInputs | None = None  # of the run being resumed
        self.settled: list[Settlement] = []  # on resume: the unknown sends, settled
        self._settled_rows: dict[str, dict[str, PreviousOutcome]] = {}
        self._redactor = redactor or Redactor()
        self.options = options
        if options.resume:
            try:
                self.options = self._resumed(options, options.resume)
            except BaseException:
                self.close()
                raise

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> Journal:
        if self.journal is None:
            self.journal = Journal(self.path, redactor=self._redactor)
        return self.journal

    def _resumed(self, options: RunOptions, run_id: str) -> RunOptions:
        """Options for resuming run `run_id`: its id; its vars and data unless given."""
        if self.path is None:
            raise ValueError(f"resuming run '{run_id}' needs a journal: RunOptions.journal is off")
        if options.run_id not in (None, run_id):
            raise ValueError(f"run_id '{options.run_id}' and resume '{run_id}' differ")
        journal = self._open()
        record = journal.run(run_id)
        if record is None:
            raise UnknownRunError(journal.path, run_id)
        stored = record.options or {}
        data, query, database = options.data, options.query, options.database
        if data is None and query is None:  # the rows the run had, unless given others
            query, database = stored.get("query"), stored.get("database")
            if query is not None and stored.get("database_given") and database is None:
                raise FlowInputError(
                    f"run {run_id} read its rows from a database whose URL holds a password,"
                    " which the journal does not keep",
                    expected="--query and --database again, as the run was given them",
                    found="no --query",
                )
            if stored.get("data") and query is None:
                data = Path(stored["data"])
        self._stored_inputs = stored_for(journal.inputs(run_id))
        self.previous = self.previous_in(journal, run_id)
        rows = options.rows
        if rows is None and stored.get("rows"):
            rows = (stored["rows"][0], stored["rows"][1])  # the slice the run was given
        return replace(
            options,
            run_id=run_id,
            vars=options.vars or stored.get("vars") or {},
            data=data,
            query=query,
            database=database,
            rows=rows,
            changed=options.changed or bool(stored.get("changed")),
        )

    def previous_in(self, journal: Journal, run_id: str) -> PreviousLookup:
        """Each row's outcomes in the earlier attempt of `run_id`, read through `journal` (a
        worker process reads through its own), with the unknown sends settled since."""
        return lambda row_key: {
            **journal.row_outcomes(run_id, row_key),
            **self._settled_rows.get(row_key, {}),
        }

    def reconcile(self, run: PreparedRun, flow_path: str | Path) -> Flow | None:
        """On resume, check the flow and data are those of the run resumed: FlowInputError
        naming what changed, unless options.resume_changed; then the flow with its changed
        steps re-keyed (None when no step changes key)."""
        stored = self._stored_inputs
        if stored is None:
            return None
        current = run_inputs(run.flow, flow_path, _data_path(run))
        found = changes(stored, current, run.flow)
        if found and not run.options.resume_changed:
            raise refuse_changes(run.run_id, found)
        # Even unchanged, a flow resumed with changes before keeps the keys it was given then.
        flow = rekeyed(run.flow, stored.steps)
        return None if flow == run.flow else flow

    def start(self, run: PreparedRun, flow_path: str | Path) -> None:
        """Record the run as running and lock its id; call once the flow is known valid (an
        invalid one leaves no trace). A second process running the id stops here with
        RunInUseError, before anything is sent."""
        self.run_id = run.run_id
        if self.path is None:
            return
        journal = self._open()
        journal.start_run(
            run.run_id, str(flow_path), run.flow.name, run.region, stored_options(run.options)
        )
        journal.record_inputs(
            run.run_id, run_inputs(run.flow, flow_path, _data_path(run)).to_json()
        )

    def settle_unknown(self, run: PreparedRun) -> list[dict[str, str]]:
        """On resume: settle the run's unknown sends by reading Customer.io (found: ok, not
        sent again; absent after the grace period: sent again; unreadable: still unknown).
        Call after `start` (the run id is locked). Returns them as the summary keeps them."""
        if self.journal is None or not self.options.resume:
            return []
        sends = self.journal.unknown_sends(run.run_id)
        if not sends:
            return []
        self.settled = _settle(run, sends)
        steps = {step.key: step for step in run.flow.all_steps}
        statuses = {FOUND: SETTLED_FOUND, ABSENT: SETTLED_ABSENT}
        for item in self.settled:
            if item.how in statuses:
                previous = PreviousOutcome(statuses[item.how], item.response, item.reason)
                self._settled_rows.setdefault(item.row_key, {})[item.step_key] = previous
        return [
            {
                "row_key": item.row_key,
                "step_key": item.step_key,
                "step": steps[item.step_key].name if item.step_key in steps else item.step_key,
                "how": item.how,
                "reason": item.reason,
            }
            for item in self.settled
        ]

    def once_book(self) -> OnceBook | None:
        """Claims of `once` keys against the journal (none without a journal)."""
        if self.journal is None:
            return None
        return OnceBook(self.journal.once_done, ignore=self.options.ignore_once)

    def listeners(self, *, outcomes: bool = True) -> list[Listener]:
        """The journal's listener: each (row, step) outcome, and the run's end; without
        `outcomes` (a run in worker processes, which record theirs) the run's progress and end."""
        if self.journal is None or self.run_id is None:
            return []
        return [self.journal.listener(self.run_id, outcomes=outcomes)]

    def for_worker(self) -> WorkerJournal | None:
        """In a worker process of this run (processes.py): a journal connection of its own,
        recording its rows' outcomes and in-flight marks; the run stays this session's."""
        if self.path is None or self.run_id is None:
            return None
        # Not checked again (the run just was); commits left to the timer thread, so a row's
        # thread never waits while another worker process holds the journal's write lock.
        journal = Journal(
            self.path, redactor=self._redactor, check=False, batch_size=100_000, flush_interval=0.1
        )
        journal.attach(self.run_id)
        previous = None if self.previous is None else self.previous_in(journal, self.run_id)
        return WorkerJournal(
            journal,
            journal.listener(self.run_id, run=False),
            journal.in_flight_marker(self.run_id),
            previous,
        )

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """No journal commit in flight meanwhile (forking: SQLite must not be mid-call)."""
        if self.journal is None:
            yield
            return
        with self.journal.paused():
            yield

    def in_flight(self) -> InFlightMarker | None:
        """Commits each send that is not safe to repeat before it leaves."""
        if self.journal is None or self.run_id is None:
            return None
        return self.journal.in_flight_marker(self.run_id)

    def settle(self, summary: RunSummary) -> RunSummary:
        """A journal write that failed, even the last one, makes the run exit 4."""
        failure = self.journal.failure if self.journal is not None else None
        if failure is not None and summary.journal_error is None:
            summary.journal_error = str(failure)
        return summary

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def _data_path(run: PreparedRun) -> Path | None:
    return None if run.data is None or run.data.fetched else run.data.path


def _settle(run: PreparedRun, sends: list[InFlightSend]) -> list[Settlement]:
    """Settlements for the unknown sends of `run` (settle.py), read with the run's App key."""
    steps = {step.key: step for step in run.flow.all_steps}
    gone = [s for s in sends if s.step_key not in steps]
    loops = [s for s in sends if s.step_key in steps and steps[s.step_key].loop is not None]
    readable = [s for s in sends if s not in gone and s not in loops]
    settled = unreadable(gone, "its step is no longer in the flow: outcome still unknown")
    settled += unreadable(
        loops, "a loop step's sends cannot be told apart in Customer.io: outcome still unknown"
    )
    missing = run.credentials.missing_for("app")
    if missing:
        reason = f"no App API key ({', '.join(missing)}) to read Customer.io: outcome still unknown"
        return settled + unreadable(readable, reason)
    app_root = run.endpoints.root("app")
    grace = run.options.settle_grace
    grace = default_grace(app_root) if grace is None else grace
    skew = 0.0 if is_local(app_root) else REMOTE_SKEW
    if readable and run.options.on_settling is not None:
        run.options.on_settling(len(readable), grace)
    with Transport(run.endpoints, run.credentials, run.options.transport) as transport:
        settler = Settler(transport.send, grace=grace, skew=skew)
        return settled + settler.settle(readable)


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (kill, a CI timeout, systemd) stops a run as Ctrl-C does: no new steps, the
    journal flushed, the run marked interrupted and resumable."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are delivered to the main thread only
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["RunSession", "UnknownRunError", "journal_path", "sigterm_as_ctrl_c", "stored_options"]
