"""The run journal: one SQLite file recording every run and each (row, step) outcome.

It answers `cio-flows runs` (recent runs and their status) and `--resume RUN_ID` (what succeeded,
with the responses saved by `save`, and what to retry). Writes are buffered and committed every
`flush_interval` seconds or `batch_size` records, so a million-row run does not pay a commit per
step; a SIGKILL loses at most the last uncommitted batch, whose rows a resume resends with the
same dedupe ids.

A request that is not safe to repeat (a transactional send, a broadcast trigger) is different:
it is committed as in flight before it leaves (`mark_in_flight`, with what settle.py needs to
find it in Customer.io later), and its outcome is committed as soon as it is recorded, not with
the next batch. So after a crash only the sends truly in flight are unknown; a resume settles
them by reading Customer.io (settle.py). Concurrent marks and outcomes share one commit.

`once:` keys of steps that succeeded are kept across runs and flows (`record_once`, `once_done`).

One process at a time executes a run id: `start_run` takes its RunLock (run_lock.py). The file
and its tables are in journal_schema.py, the queries in journal_reads.py, and the listener that
feeds it the engine's events in journal_listener.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import JournalError, RunInUseError
from ..redact import Redactor
from .events import FAILED, OK, SKIPPED, UNKNOWN, RunSummary
from .journal_listener import JournalListener, OutcomeFields
from .journal_reads import (
    InFlightSend,
    Outcome,
    Record,
    RunRecord,
    in_flight_sends,
    once_run,
    recent_runs,
    row_outcomes,
    run_by_id,
    run_outcomes,
)
from .journal_schema import (
    FAILED_RUN,
    IN_FLIGHT,
    INTERRUPTED,
    PASSED,
    RUNNING,
    BatchInsert,
    default_journal_path,
    open_database,
    sqlite_reason,
)
from .run_lock import RunLock

# A replayed step (resume) carries no response: keep the one saved before. Attempts add up,
# so a step retried over several resumes shows every request it cost.
_UPSERT_OUTCOMES = BatchInsert(
    "INSERT INTO outcomes (run_id, row_key, step_key, status, attempts, error, result,"
    " request_hash)",
    8,
    """ON CONFLICT (run_id, row_key, step_key) DO UPDATE SET
    status = excluded.status,
    attempts = outcomes.attempts + excluded.attempts,
    error = excluded.error,
    result = COALESCE(excluded.result, outcomes.result),
    request_hash = COALESCE(excluded.request_hash, outcomes.request_hash)""",
)
# The in-flight mark's facts; a mark again (a resend after settling) keeps the first time.
_UPSERT_IN_FLIGHT = """
INSERT INTO in_flight (run_id, row_key, step_key, since, request) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (run_id, row_key, step_key) DO UPDATE SET
    since = MIN(in_flight.since, excluded.since),
    request = COALESCE(excluded.request, in_flight.request)
"""
_INSERT_ONCE = "INSERT OR IGNORE INTO once_keys VALUES (?, ?, ?, ?, ?)"

StepId = tuple[str, str, str]  # (run_id, row_key, step_key)


@dataclass
class _Live:
    """Progress of a run this process is writing, stored at each commit."""

    counts: dict[str, int] = field(
        default_factory=lambda: {OK: 0, FAILED: 0, SKIPPED: 0, UNKNOWN: 0}
    )
    rows: int = 0


class Journal:
    def __init__(
        self,
        path: str | Path | None = None,
        *,
        redactor: Redactor | None = None,
        flush_interval: float = 0.5,
        batch_size: int = 5000,
        check: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else default_journal_path()
        self._redact = redactor or (lambda text: text)
        self._flush_interval = flush_interval
        self._batch_size = max(1, batch_size)
        self._db_lock = threading.Lock()  # the connection
        self._buf_lock = threading.Lock()  # the buffer and live counts
        self._buffer: list[Record] = []
        self._marks: list[Record] = []  # in_flight rows, committed with the outcomes
        self._onces: list[Record] = []  # once_keys rows, likewise
        self._awaiting: set[StepId] = set()  # marked here: its outcome is committed at once
        self._appended = 0  # records ever put in the buffer...
        self._committed = 0  # ...and how many of them are committed
        self._live: dict[str, _Live] = {}
        self._locks: dict[str, RunLock] = {}
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        self.failure: JournalError | None = None  # the first write that failed; nothing after
        self._db: sqlite3.Connection | None = open_database(self.path, checked=not check)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- writing ----------------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        flow_path: str,
        flow_name: str,
        region: str | None,
        options: dict[str, Any] | None = None,
    ) -> None:
        """Record a run as running in this process; a resume (same id) keeps its outcomes.

        Raises RunInUseError when another process is executing the same run id.
        `options` None keeps the options already stored (the listener starts runs it sees begin).
        """
        self._lock_run(run_id)
        options_json = None if options is None else self._redact(json.dumps(options, default=str))
        with self._buf_lock:
            self._live[run_id] = _Live()
        self._write(
            """INSERT INTO runs (run_id, flow_name, flow_path, region, options, started_at,
                                 status, pid, host)
               VALUES (:run_id, :flow_name, :flow_path, :region, COALESCE(:options, '{}'),
                       :now, :status, :pid, :host)
               ON CONFLICT (run_id) DO UPDATE SET
                   flow_name = excluded.flow_name, flow_path = excluded.flow_path,
                   region = excluded.region, options = COALESCE(:options, runs.options),
                   finished_at = NULL, status = excluded.status,
                   pid = excluded.pid, host = excluded.host""",
            {
                "run_id": run_id,
                "flow_name": flow_name,
                "flow_path": str(flow_path),
                "region": region,
                "options": options_json,
                "now": time.time(),
                "status": RUNNING,
                "pid": os.getpid(),
                "host": socket.gethostname(),
            },
        )
        self._start_flusher()

    def record_inputs(self, run_id: str, inputs_json: str) -> None:
        """Keep what run `run_id` is made of (flow, data, steps: resume_inputs.py), committed now."""
        self._write(
            "INSERT INTO run_inputs (run_id, inputs) VALUES (?, ?)"
            " ON CONFLICT (run_id) DO UPDATE SET inputs = excluded.inputs",
            (run_id, inputs_json),
        )

    def _lock_run(self, run_id: str) -> None:
        if run_id not in self._locks:
            lock = RunLock(self.path, run_id)
            lock.acquire()
            self._locks[run_id] = lock

    def record(
        self,
        run_id: str,
        row_key: str,
        step_key: str,
        status: str,
        attempts: int = 0,
        error: str | None = None,
        result: Any = None,
        request_hash: int | None = None,
    ) -> None:
        """Upsert one outcome (buffered). `result` must be JSON-able. `request_hash`, the hash
        of the step's request for `--changed` (run/changed.py), is kept with it."""
        self.record_many(
            run_id, [(row_key, step_key, status, attempts, error, result, request_hash)]
        )

    def record_many(self, run_id: str, outcomes: Sequence[OutcomeFields]) -> None:
        """record() of each outcome (its arguments after `run_id`), buffered together."""
        self._raise_if_failed()
        redact = self._redact
        records = [
            (
                run_id,
                row_key,
                step_key,
                status,
                attempts,
                None if error is None else redact(error),
                None if result is None else redact(json.dumps(result, default=str)),
                request_hash,
            )
            for row_key, step_key, status, attempts, error, result, request_hash in outcomes
        ]
        with self._buf_lock:
            self._buffer += records
            self._appended += len(records)
            ticket = self._appended
            live = self._live.get(run_id)
            if live is not None:
                for record in records:
                    live.counts[record[3]] = live.counts.get(record[3], 0) + 1
            full = len(self._buffer) >= self._batch_size
            # every mark awaited among them is answered (a list: each is discarded)
            answered = bool(self._awaiting) and any(
                [self._answered((run_id, record[1], record[2])) for record in records]
            )
        if answered:
            self._commit_through(ticket)
        elif full:
            self.flush()

    def _answered(self, step_id: StepId) -> bool:
        """Whether `step_id` was marked in flight here, its outcome awaited (under _buf_lock)."""
        if step_id not in self._awaiting:
            return False
        self._awaiting.discard(step_id)
        return True

    def mark_in_flight(
        self, run_id: str, row_key: str, step_key: str, facts: dict[str, Any] | None = None
    ) -> None:
        """Commit, durably, that a send for (row, step) is about to leave; returns once it is.

        `facts` (settle.py's send_facts: channel, recipient, template...) are kept with the
        time, so a resume can look the send up in Customer.io. Sends marked by other threads
        meanwhile share the commit (and so do buffered outcomes). Raises JournalError if it
        cannot be written: the send must then not happen.
        """
        self._raise_if_failed()
        facts_json = None if facts is None else self._redact(json.dumps(facts, default=str))
        step_id = (run_id, row_key, step_key)
        with self._buf_lock:
            ticket = self._append((*step_id, IN_FLIGHT, 0, None, None, None))
            self._marks.append((*step_id, time.time(), facts_json))
            self._awaiting.add(step_id)
        self._commit_through(ticket)

    def record_once(self, key: str, run_id: str, row_key: str, step_key: str) -> None:
        """A `once:` key done (buffered: committed with the step's outcome, which follows)."""
        self._raise_if_failed()
        with self._buf_lock:
            self._onces.append((self._redact(key), run_id, row_key, step_key, time.time()))

    def once_done(self, key: str) -> str | None:
        """The run that recorded `once:` key `key` (committed or buffered here), or None."""
        redacted = self._redact(key)
        with self._buf_lock:
            for once in self._onces:
                if once[0] == redacted:
                    return str(once[1])
        return once_run(self._query, redacted)

    def _commit_through(self, ticket: int) -> None:
        """Commit durably unless another thread's commit already carried record `ticket`."""
        with self._db_lock:
            if self._committed < ticket:
                self._commit_locked(durable=True)

    def finish_run(self, run_id: str, summary: RunSummary) -> None:
        status = INTERRUPTED if summary.interrupted else PASSED if summary.ok else FAILED_RUN
        try:
            self.flush()
            with self._buf_lock:
                self._live.pop(run_id, None)
            self._write(
                "UPDATE runs SET finished_at = ?, status = ?, counts = ?, rows = ? WHERE run_id = ?",
                (time.time(), status, json.dumps(summary.counts), summary.rows, run_id),
            )
        finally:
            lock = self._locks.pop(run_id, None)
            if lock is not None:
                lock.release()

    def flush(self) -> None:
        """Commit buffered outcomes and the progress of running runs, in one transaction."""
        with self._db_lock:
            self._commit_locked(durable=False)

    def _append(self, record: Record) -> int:
        """Buffer a record (under _buf_lock); its ticket is committed once _committed reaches it."""
        self._buffer.append(record)
        self._appended += 1
        return self._appended

    def _commit_locked(self, *, durable: bool) -> None:
        # The swap happens under the connection lock so batches reach the file in order.
        self._raise_if_failed()
        with self._buf_lock:
            batch, self._buffer = self._buffer, []
            marks, self._marks = self._marks, []
            onces, self._onces = self._onces, []
            ticket = self._appended
            progress = [(json.dumps(v.counts), v.rows, k) for k, v in self._live.items()]
        if self._db is None and batch:
            raise JournalError(self.path, "is closed")
        if self._db is None or not (batch or progress or onces):
            return
        try:
            if durable:  # survives power loss too, not only a killed process
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN")
            try:
                _UPSERT_OUTCOMES(self._db, batch)
                self._db.executemany(_UPSERT_IN_FLIGHT, marks)
                self._db.executemany(_INSERT_ONCE, onces)
                self._db.executemany(
                    "UPDATE runs SET counts = ?, rows = ? WHERE run_id = ?", progress
                )
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # some errors roll back on their own
                    self._db.execute("ROLLBACK")
                with self._buf_lock:  # e.g. Ctrl-C: the records go in with the next commit
                    self._buffer[:0] = batch
                    self._marks[:0] = marks
                    self._onces[:0] = onces
                raise
            self._db.execute("COMMIT")
            if durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            self._fail(exc)
        self._committed = ticket

    def _write(self, sql: str, params: Any) -> None:
        with self._db_lock:
            self._raise_if_failed()
            if self._db is None:
                raise JournalError(self.path, "is closed")
            try:
                self._db.execute(sql, params)
            except sqlite3.Error as exc:
                self._fail(exc)

    def _fail(self, exc: sqlite3.Error) -> None:
        self.failure = JournalError(self.path, sqlite_reason(exc))
        raise self.failure from None

    def _raise_if_failed(self) -> None:
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        self._closed.set()
        if self._flusher is not None:
            self._flusher.join()
        with contextlib.suppress(JournalError):  # already in `failure`, reported by the caller
            self.flush()
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        for lock in self._locks.values():
            lock.release()
        self._locks.clear()

    def _start_flusher(self) -> None:
        # Commits on a timer too, so a quiet spell (a long wait_until) does not hold records back.
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="cio-journal", daemon=True
            )
            self._flusher.start()

    def _flush_periodically(self) -> None:
        while not self._closed.wait(self._flush_interval):
            try:
                self.flush()
            except JournalError:
                return  # `failure` is set: the next record or send raises it

    # --- the engine's listener --------------------------------------------------------------

    def listener(self, run_id: str, *, outcomes: bool = True, run: bool = True) -> JournalListener:
        """A listener recording the outcomes of run `run_id` as the engine emits them (see
        JournalListener for a run split over processes)."""
        return JournalListener(self, run_id, outcomes=outcomes, run=run)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No commit (no SQLite call through this journal) while inside."""
        with self._db_lock:
            yield

    def attach(self, run_id: str) -> None:
        """Record outcomes of run `run_id`, which another process of the same run started and
        holds locked (a worker process: processes.py); committed on the timer as a run's are."""
        self._start_flusher()

    def count_outcomes(self, run_id: str, statuses: Sequence[str]) -> None:
        """More outcomes of `run_id`, recorded by worker processes: the progress counts."""
        with self._buf_lock:
            live = self._live.get(run_id)
            if live is not None:
                for status in statuses:
                    live.counts[status] = live.counts.get(status, 0) + 1

    def is_running_here(self, run_id: str) -> bool:
        """Whether this journal has started `run_id` and not finished it yet."""
        with self._buf_lock:
            return run_id in self._live

    def count_row(self, run_id: str, rows: int = 1) -> None:
        """More rows of `run_id` done: stored with the run's progress at the next commit."""
        with self._buf_lock:
            if run_id in self._live:
                self._live[run_id].rows += rows

    def in_flight_marker(self, run_id: str) -> Callable[[str, str, dict[str, Any] | None], None]:
        """What the executor calls before each send that is not safe to repeat."""
        return lambda row_key, step_key, facts: self.mark_in_flight(
            run_id, row_key, step_key, facts
        )

    # --- reading ----------------------------------------------------------------------------

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first."""
        return recent_runs(self._query, limit)

    def run(self, run_id: str) -> RunRecord | None:
        return run_by_id(self._query, run_id)

    def inputs(self, run_id: str) -> str | None:
        """What record_inputs kept for the run (None for a run recorded before it existed)."""
        rows = self._query("SELECT inputs FROM run_inputs WHERE run_id = ?", (run_id,))
        return rows[0][0] if rows else None

    def outcomes(self, run_id: str) -> dict[tuple[str, str], Outcome]:
        """Every committed outcome of a run, by (row_key, step_key)."""
        return run_outcomes(self._query, run_id)

    def row_outcomes(self, run_id: str, row_key: str) -> dict[str, Outcome]:
        """One row's outcomes by step key: what a resume asks for each row (primary-key lookup)."""
        return row_outcomes(self._query, run_id, row_key)

    def unknown_sends(self, run_id: str) -> list[InFlightSend]:
        """The run's sends still marked in flight (outcome unknown), with what they were."""
        return in_flight_sends(self._query, run_id)

    def query(self, sql: str, params: Record) -> list[Record]:
        """One SELECT under the connection's lock (journal_admin.py's reads)."""
        return self._query(sql, params)

    def _query(self, sql: str, params: Record) -> list[Record]:
        with self._db_lock:
            if self._db is None:
                raise RuntimeError(f"journal {self.path} is closed")
            return self._db.execute(sql, params).fetchall()


__all__ = [
    "IN_FLIGHT",
    "InFlightSend",
    "Journal",
    "JournalError",
    "Outcome",
    "RunInUseError",
    "RunLock",
    "RunRecord",
    "default_journal_path",
]
