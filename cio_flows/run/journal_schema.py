"""The journal's SQLite file: its tables, the statuses it stores, and opening it for writing."""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from ..errors import JournalError


class RunStatus(StrEnum):
    """A run's status in the journal (`cio-flows runs` prints it)."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


RUNNING, PASSED, FAILED_RUN = RunStatus.RUNNING, RunStatus.PASSED, RunStatus.FAILED
INTERRUPTED = RunStatus.INTERRUPTED
IN_FLIGHT = "in_flight"  # a step's journal status: a send committed before it left, no outcome yet

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
    request_hash INTEGER, -- the hash of the step's request (run/changed.py), for --changed
    PRIMARY KEY (run_id, row_key, step_key)
) WITHOUT ROWID;
-- What a run was made of (run/resume_inputs.py), JSON: a resume checks it is still the same.
CREATE TABLE IF NOT EXISTS run_inputs (
    run_id TEXT PRIMARY KEY,
    inputs TEXT NOT NULL
);
-- What an in-flight send was (channel, recipient, template: settle.py's facts) and when it
-- left: a resume reads Customer.io with them to settle the send's unknown outcome.
CREATE TABLE IF NOT EXISTS in_flight (
    run_id TEXT NOT NULL,
    row_key TEXT NOT NULL,
    step_key TEXT NOT NULL,
    since REAL NOT NULL,
    request TEXT,
    marks INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (run_id, row_key, step_key)
) WITHOUT ROWID;
-- `once:` keys of steps that succeeded, in any run and flow using this journal.
CREATE TABLE IF NOT EXISTS once_keys (
    key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    row_key TEXT NOT NULL,
    step_key TEXT NOT NULL,
    done_at REAL NOT NULL
) WITHOUT ROWID;
-- Per row key and step, a hash of the request the run rendered (run/changed.py): a later
-- `run --changed` leaves out the rows whose hashes equal those of the last passed run. Here
-- the hashes `--changed` takes before sending, and those of journals older than the
-- outcomes' request_hash column; a run's own go with its outcomes.
CREATE TABLE IF NOT EXISTS request_hashes (
    run_id TEXT NOT NULL,
    row_key TEXT NOT NULL,
    step_key TEXT NOT NULL,
    hash INTEGER NOT NULL,
    PRIMARY KEY (run_id, row_key, step_key)
) WITHOUT ROWID;
"""
_ADDED_COLUMNS = {"outcomes": {"request_hash": "INTEGER"}}  # columns newer than the table


@dataclass
class BatchInsert:
    """An INSERT of many records: one JSON array bound to one statement, whose json_each runs
    in SQLite without the GIL, instead of executemany's call per record, each taking the GIL
    back from the threads rendering rows (and slower: 2.1 against 3.1 us a record)."""

    head: str  # INSERT ... INTO table (columns)
    width: int  # values a record
    tail: str = ""  # ON CONFLICT ...

    def __call__(self, db: sqlite3.Connection, records: Sequence[tuple[Any, ...]]) -> None:
        if not records:
            return
        try:
            text: bytes | None = orjson.dumps(records)
        except TypeError:  # beyond JSON (a lone surrogate): SQLite's own binding says what
            text = None
        if text is None or b"\\u0000" in text:  # SQLite's JSON functions end text at a NUL
            db.executemany(self._values, records)
        else:
            db.execute(self._json, (text,))

    @functools.cached_property
    def _values(self) -> str:
        return f"{self.head} VALUES ({', '.join('?' * self.width)}) {self.tail}"

    @functools.cached_property
    def _json(self) -> str:
        # json_extract, not 3.38's ->>: the SQLite of older Linux distributions has it too
        columns = ", ".join(f"json_extract(value, '$[{index}]')" for index in range(self.width))
        return f"{self.head} SELECT {columns} FROM json_each(?) WHERE true {self.tail}"


INSERT_REQUEST_HASHES = BatchInsert("INSERT OR REPLACE INTO request_hashes", 4)


def default_journal_path() -> Path:
    """$CIO_FLOWS_JOURNAL, else journal.db in the user's data folder (platformdirs: on Linux
    ~/.local/share/cio-flows, on macOS ~/Library/Application Support/cio-flows, on Windows
    %LOCALAPPDATA%\\cio-flows): one place, so `runs` and `--resume` find it from any folder."""
    given = os.environ.get("CIO_FLOWS_JOURNAL")
    if given:
        return Path(given)
    from platformdirs import user_data_path  # only when the default is used

    return user_data_path("cio-flows", appauthor=False) / "journal.db"


def open_database(path: Path, *, checked: bool = False) -> sqlite3.Connection:
    """Open, create and check the journal for writing; JournalError says why not. `checked`:
    this process, or the parent of this worker process, checked the file intact moments ago
    (quick_check reads all of it)."""
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
        if not checked:
            _check_intact(db)
        db.executescript(_SCHEMA)
        _add_columns(db)
        _check_writable(db)
    except sqlite3.Error as exc:
        if db is not None:
            db.close()
        raise JournalError(path, sqlite_reason(exc)) from None
    return db


def _check_intact(db: sqlite3.Connection) -> None:
    # A damaged page found now stops the run before anything is sent, not halfway (resume).
    problems = [row[0] for row in db.execute("PRAGMA quick_check(3)").fetchall()]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError(f"is damaged (PRAGMA quick_check: {'; '.join(problems)})")


def _add_columns(db: sqlite3.Connection) -> None:
    """A journal written by an older cio-flows gets the columns added since (ALTER TABLE ADD
    COLUMN changes the schema only: no row is rewritten)."""
    for table, columns in _ADDED_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in present:
                try:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):  # added by another process meanwhile
                        raise


def _check_writable(db: sqlite3.Connection) -> None:
    # Rewriting the header proves a write would succeed (a read-only file opens without error).
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute(f"PRAGMA user_version = {int(version)}")
    finally:
        db.execute("ROLLBACK")


def sqlite_reason(exc: sqlite3.Error) -> str:
    """What a JournalError says about a failed SQLite call."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB":
        return "is not a SQLite database (not a cio-flows journal?)"
    if name.startswith("SQLITE_READONLY"):
        return "is read-only: a run must record what it sends"
    if name.startswith("SQLITE_CORRUPT") or str(exc).startswith("is damaged"):
        text = str(exc) if str(exc).startswith("is damaged") else f"is damaged ({exc})"
        return f"{text}: restore it or start a new run with another --journal"
    if name.startswith("SQLITE_FULL"):
        return "cannot be written: the disk is full"
    if name.startswith("SQLITE_IOERR"):  # a failed write: e.g. a full disk, a file size limit
        return f"cannot be written: {exc} ({name})"
    return f"cannot be used: {exc}"
