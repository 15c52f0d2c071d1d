"""The run journal: one SQLite file recording every run and each (row, step) outcome.

It answers `cio-flows runs` (recent runs and their status) and `--resume RUN_ID` (what succeeded,
with the responses saved by `save`, and what to retry). Writes are buffered and committed every
`flush_interval` seconds or `batch_size` records, so a million-row run does not pay a commit per
step; a SIGKILL loses at most the last uncommitted batch, whose rows a resume resends with the
same dedupe ids.

A request that is not safe to repeat (a transactional send) is different: it is committed as in
flight before it leaves (`mark_in_flight`), so after a crash a resume finds it and reports it
UNKNOWN instead of sending it again. Concurrent marks share one commit.

One process at a time executes a run id: `start_run` takes an exclusive lock (fcntl.flock on a
file next to the journal), which the kernel releases when the process dies, even on SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import JournalError, RunInUseError
from ..redact import Redactor
from .events import (
    FAILED,
    OK,
    SKIPPED,
    UNKNOWN,
    Event,
    RowFailed,
    RowFinished,
    RunError,
    RunFinished,
    RunStarted,
    RunSummary,
    StepFinished,
)

RUNNING, PASSED, FAILED_RUN, INTERRUPTED = "running", "passed", "failed", "interrupted"
IN_FLIGHT = "in_flight"  # a send committed before it left, with no outcome yet
# Step keys of errors that belong to no step: a row that could not start, a run that broke.
ROW_ERROR, RUN_ERROR = "(row)", "(run)"
_IN_FLIGHT_ERROR = "was being sent when the run stopped: outcome unknown"

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


class RunLock:
    """An exclusive lock on one run id: a file locked with flock while the run executes.

    The file is removed on release; a process that locked a file removed under it retries, so
    two processes never both believe they hold the lock.
    """

    def __init__(self, journal_path: Path, run_id: str) -> None:
        self.path = journal_path.with_name(f"{journal_path.name}.{_safe_name(run_id)}.lock")
        self.run_id = run_id
        self._fd: int | None = None

    def acquire(self) -> None:
        while self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise JournalError(
                    self.path, f"cannot create the run lock: {exc.strerror}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise RunInUseError(self.path, self.run_id, holder) from None
            if _same_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
                self._fd = fd
            else:  # released and removed between our open and our lock: try again
                os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            # Unlink while still holding the lock, so nobody locks a file about to vanish.
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self._fd)
            self._fd = None


def _safe_name(run_id: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", run_id):
        return run_id
    return "x" + run_id.encode().hex()[:120]


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _read_holder(fd: int) -> str:
    """'pid N on host H' from a lock file (the holder may not have written it yet)."""
    for _ in range(20):
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
        if len(text) == 2:
            return f"pid {text[0]} on host {text[1]}"
        time.sleep(0.01)
    return "another process"


def _open_database(path: Path) -> sqlite3.Connection:
    """Open, create and check the journal for writing; JournalError says why not."""
    if path.is_dir():
        raise JournalError(path, "is a directory, not a journal file")
    if path.exists() and not (os.access(path, os.W_OK) and path.stat().st_mode & 0o222):
        raise JournalError(path, "is read-only: a run must record what it sends")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalError(path, f"cannot create its folder: {exc.strerror}") from None
    db = None
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        _check_writable(db)
    except sqlite3.Error as exc:
        if db is not None:
            db.close()
        raise JournalError(path, _sqlite_reason(exc)) from None
    return db


def _check_writable(db: sqlite3.Connection) -> None:
    # Rewriting the header proves a write would succeed (a read-only file opens without error).
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute(f"PRAGMA user_version = {int(version)}")
    finally:
        db.execute("ROLLBACK")


def _sqlite_reason(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB":
        return "is not a SQLite database (not a cio-flows journal?)"
    if name.startswith("SQLITE_READONLY"):
        return "is read-only: a run must record what it sends"
    if name.startswith("SQLITE_FULL"):
        return "cannot be written: the disk is full"
    if name.startswith("SQLITE_IOERR"):  # a failed write: e.g. a full disk, a file size limit
        return f"cannot be written: {exc} ({name})"
    return f"cannot be used: {exc}"


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
        self._redact = redactor or (lambda text: text)
        self._flush_interval = flush_interval
        self._batch_size = max(1, batch_size)
        self._db_lock = threading.Lock()  # the connection
        self._buf_lock = threading.Lock()  # the buffer and live counts
        self._buffer: list[tuple] = []
        self._appended = 0  # records ever put in the buffer...
        self._committed = 0  # ...and how many of them are committed
        self._live: dict[str, _Live] = {}
        self._locks: dict[str, RunLock] = {}
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        self.failure: JournalError | None = None  # the first write that failed; nothing after
        self._db: sqlite3.Connection | None = _open_database(self.path)

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
    ) -> None:
        """Upsert one outcome (buffered). `result` must be JSON-able."""
        self._raise_if_failed()
        error = None if error is None else self._redact(error)
        result_json = None if result is None else self._redact(json.dumps(result, default=str))
        with self._buf_lock:
            self._append((run_id, row_key, step_key, status, attempts, error, result_json))
            live = self._live.get(run_id)
            if live is not None:
                live.counts[status] = live.counts.get(status, 0) + 1
            full = len(self._buffer) >= self._batch_size
        if full:
            self.flush()

    def mark_in_flight(self, run_id: str, row_key: str, step_key: str) -> None:
        """Commit, durably, that a send for (row, step) is about to leave; returns once it is.

        Sends marked by other threads meanwhile share the commit (and so do buffered outcomes).
        Raises JournalError if it cannot be written: the send must then not happen.
        """
        self._raise_if_failed()
        with self._buf_lock:
            ticket = self._append((run_id, row_key, step_key, IN_FLIGHT, 0, None, None))
        with self._db_lock:
            if self._committed < ticket:  # else another thread's commit carried it
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

    def _append(self, record: tuple) -> int:
        """Buffer a record (under _buf_lock); its ticket is committed once _committed reaches it."""
        self._buffer.append(record)
        self._appended += 1
        return self._appended

    def _commit_locked(self, *, durable: bool) -> None:
        # The swap happens under the connection lock so batches reach the file in order.
        self._raise_if_failed()
        with self._buf_lock:
            batch, self._buffer = self._buffer, []
            ticket = self._appended
            progress = [(json.dumps(v.counts), v.rows, k) for k, v in self._live.items()]
        if self._db is None and batch:
            raise JournalError(self.path, "is closed")
        if self._db is None or not (batch or progress):
            return
        try:
            if durable:  # survives power loss too, not only a killed process
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN")
            try:
                self._db.executemany(_UPSERT, batch)
                self._db.executemany(
                    "UPDATE runs SET counts = ?, rows = ? WHERE run_id = ?", progress
                )
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # some errors roll back on their own
                    self._db.execute("ROLLBACK")
                with self._buf_lock:  # e.g. Ctrl-C: the records go in with the next commit
                    self._buffer[:0] = batch
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
        self.failure = JournalError(self.path, _sqlite_reason(exc))
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
            elif isinstance(event, RowFailed | RunError):
                # Not a step's outcome: kept under a key no resume looks up, for the record.
                row = event.row_number if isinstance(event, RowFailed) else None
                where = "-" if row is None else f"row {row}"
                what = ROW_ERROR if isinstance(event, RowFailed) else RUN_ERROR
                self.record(run_id, where, what, FAILED, 0, event.error)
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
                with contextlib.suppress(JournalError):  # in `failure`: the caller exits 4
                    self.finish_run(run_id, event.summary)

        return listen

    def in_flight_marker(self, run_id: str) -> Callable[[str, str], None]:
        """What the executor calls before each send that is not safe to repeat."""
        return lambda row_key, step_key: self.mark_in_flight(run_id, row_key, step_key)

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
    if status == IN_FLIGHT:  # the process stopped between sending and recording the answer
        status, error = UNKNOWN, _IN_FLIGHT_ERROR
    return Outcome(status, attempts, error, None if result is None else json.loads(result))


__all__ = [
    "IN_FLIGHT",
    "Journal",
    "JournalError",
    "Outcome",
    "RunInUseError",
    "RunLock",
    "RunRecord",
    "default_journal_path",
]
