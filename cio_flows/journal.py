"""The run journal: one SQLite file recording every run and each (row, step) outcome.

It answers `cio-flows runs` (recent runs and their status) and `--resume RUN_ID` (what succeeded,
with the responses saved by `save`, and what to retry). Writes are buffered and committed every
`flush_interval` seconds or `batch_size` records, so a million-row run does not pay a commit per
step; a SIGKILL loses at most the last uncommitted batch, whose rows a resume resends with the
same dedupe ids.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .events import (
    FAILED,
    OK,
    SKIPPED,
    UNKNOWN,
    Event,
    RowFinished,
    RunFinished,
    RunStarted,
    RunSummary,
    StepFinished,
)
from .redact import Redactor

RUNNING, PASSED, FAILED_RUN, INTERRUPTED = "running", "passed", "failed", "interrupted"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    flow_name TEXT NOT NULL,
    flow_path TEXT NOT NULL,
    region TEXT,
    options TEXT NOT NULL DEFAULT '{}',
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    counts TEXT NOT NULL DEFAULT '{}',
    rows INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    host TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id TEXT NOT NULL,
    row_key TEXT NOT NULL,
    step_key TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    result TEXT,
    PRIMARY KEY (run_id, row_key, step_key)
) WITHOUT ROWID;
"""

# A replayed step (resume) carries no response: keep the one saved before. Attempts add up,
# so a step retried over several resumes shows every request it cost.
_UPSERT = """
INSERT INTO outcomes (run_id, row_key, step_key, status, attempts, error, result)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, row_key, step_key) DO UPDATE SET
    status = excluded.status,
    attempts = outcomes.attempts + excluded.attempts,
    error = excluded.error,
    result = COALESCE(excluded.result, outcomes.result)
"""


def default_journal_path() -> Path:
    """$CIO_FLOWS_JOURNAL, else ./.cio-flows/journal.db."""
    return Path(os.environ.get("CIO_FLOWS_JOURNAL") or Path(".cio-flows") / "journal.db")


@dataclass(frozen=True)
class Outcome:
    """One (row, step) as last recorded; `result` is the saved response, if the step saves."""

    status: str
    attempts: int
    error: str | None
    result: Any = None


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    flow_name: str
    flow_path: str
    started_at: datetime
    finished_at: datetime | None
    status: str  # running | passed | failed | interrupted
    counts: dict[str, int]
    options: dict[str, Any]
    region: str | None = None
    rows: int = 0


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
    ) -> None:
        self.path = Path(path) if path is not None else default_journal_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._redact = redactor or (lambda text: text)
        self._flush_interval = flush_interval
        self._batch_size = max(1, batch_size)
        self._db_lock = threading.Lock()  # the connection
        self._buf_lock = threading.Lock()  # the buffer and live counts
        self._buffer: list[tuple] = []
        self._live: dict[str, _Live] = {}
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

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

        `options` None keeps the options already stored (the listener starts runs it sees begin).
        """
        options_json = None if options is None else self._redact(json.dumps(options, default=str))
        with self._buf_lock:
            self._live[run_id] = _Live()
        with self._db_lock:
            self._db.execute(
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

    def record(
        self,
        run_id: str,
        row_key: str,
        step_key: str,
        status: str,
        attempts: int = 0,
        error: str | None = None,
        result: Any = None,
    ) -> None:
        """Upsert one outcome (buffered). `result` must be JSON-able."""
        error = None if error is None else self._redact(error)
        result_json = None if result is None else self._redact(json.dumps(result, default=str))
        with self._buf_lock:
            self._buffer.append((run_id, row_key, step_key, status, attempts, error, result_json))
            live = self._live.get(run_id)
            if live is not None:
                live.counts[status] = live.counts.get(status, 0) + 1
            full = len(self._buffer) >= self._batch_size
        if full:
            self.flush()

    def finish_run(self, run_id: str, summary: RunSummary) -> None:
        status = INTERRUPTED if summary.interrupted else PASSED if summary.ok else FAILED_RUN
        self.flush()
        with self._buf_lock:
            self._live.pop(run_id, None)
        with self._db_lock:
            self._db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, counts = ?, rows = ? WHERE run_id = ?",
                (time.time(), status, json.dumps(summary.counts), summary.rows, run_id),
            )

    def flush(self) -> None:
        """Commit buffered outcomes and the progress of running runs, in one transaction."""
        # The swap happens under the connection lock so batches reach the file in order.
        with self._db_lock:
            with self._buf_lock:
                batch, self._buffer = self._buffer, []
                progress = [(json.dumps(v.counts), v.rows, k) for k, v in self._live.items()]
            if self._db is None or not (batch or progress):
                return
            self._db.execute("BEGIN")
            try:
                self._db.executemany(_UPSERT, batch)
                self._db.executemany(
                    "UPDATE runs SET counts = ?, rows = ? WHERE run_id = ?", progress
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._closed.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush()
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _start_flusher(self) -> None:
        # Commits on a timer too, so a quiet spell (a long wait_until) does not hold records back.
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="cio-journal", daemon=True
            )
            self._flusher.start()

    def _flush_periodically(self) -> None:
        while not self._closed.wait(self._flush_interval):
            self.flush()

    # --- the engine's listener --------------------------------------------------------------

    def listener(self, run_id: str) -> Callable[[Event], None]:
        """A listener recording the outcomes of run `run_id` as the engine emits them."""

        def listen(event: Event) -> None:
            if isinstance(event, StepFinished):
                result = event.saved if event.step.save else None
                self.record(
                    run_id,
                    event.row_key or "-",
                    event.step.key,
                    event.status,
                    event.attempts,
                    event.error,
                    result,
                )
            elif isinstance(event, RowFinished):
                with self._buf_lock:
                    if run_id in self._live:
                        self._live[run_id].rows += 1
            elif isinstance(event, RunStarted):
                with self._buf_lock:
                    started = run_id in self._live
                if not started:
                    self.start_run(run_id, event.flow_path, event.flow_name, event.region)
            elif isinstance(event, RunFinished):
                self.finish_run(run_id, event.summary)

        return listen

    # --- reading ----------------------------------------------------------------------------

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first."""
        rows = self._query(
            f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?",
            (limit,),
        )
        return [self._run_record(row) for row in rows]

    def run(self, run_id: str) -> RunRecord | None:
        rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return self._run_record(rows[0]) if rows else None

    def outcomes(self, run_id: str) -> dict[tuple[str, str], Outcome]:
        """Every committed outcome of a run, by (row_key, step_key)."""
        rows = self._query(
            "SELECT row_key, step_key, status, attempts, error, result FROM outcomes"
            " WHERE run_id = ?",
            (run_id,),
        )
        return {(r[0], r[1]): _outcome(r[2:]) for r in rows}

    def row_outcomes(self, run_id: str, row_key: str) -> dict[str, Outcome]:
        """One row's outcomes by step key: what a resume asks for each row (primary-key lookup)."""
        rows = self._query(
            "SELECT step_key, status, attempts, error, result FROM outcomes"
            " WHERE run_id = ? AND row_key = ?",
            (run_id, row_key),
        )
        return {r[0]: _outcome(r[1:]) for r in rows}

    def _query(self, sql: str, params: tuple) -> list[tuple]:
        with self._db_lock:
            if self._db is None:
                raise RuntimeError(f"journal {self.path} is closed")
            return self._db.execute(sql, params).fetchall()

    def _run_record(self, row: tuple) -> RunRecord:
        run_id, name, path, region, options, started, finished, status, counts, rows, pid, host = (
            row
        )
        if status == RUNNING and not self._alive(pid, host):
            status = INTERRUPTED  # SIGKILL, power loss: nobody will finish it
        return RunRecord(
            run_id=run_id,
            flow_name=name,
            flow_path=path,
            started_at=datetime.fromtimestamp(started, UTC),
            finished_at=None if finished is None else datetime.fromtimestamp(finished, UTC),
            status=status,
            counts=json.loads(counts),
            options=json.loads(options),
            region=region,
            rows=rows,
        )

    def _alive(self, pid: int | None, host: str | None) -> bool:
        if pid is None or host != socket.gethostname():
            return True  # cannot tell from here
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process
            return True
        return True


_RUN_COLUMNS = (
    "run_id, flow_name, flow_path, region, options, started_at, finished_at, status, counts,"
    " rows, pid, host"
)


def _outcome(columns: tuple) -> Outcome:
    status, attempts, error, result = columns
    return Outcome(status, attempts, error, None if result is None else json.loads(result))


__all__ = ["Journal", "Outcome", "RunRecord", "default_journal_path"]
