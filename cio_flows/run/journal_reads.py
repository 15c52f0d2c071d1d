"""Reading the journal: recent runs (`cio-flows runs`) and outcomes (what `--resume` looks up).

Each function takes `query`, which runs one SELECT on the journal's connection under its lock.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .events import UNKNOWN
from .journal_schema import IN_FLIGHT, INTERRUPTED, RUNNING

Record = tuple[Any, ...]  # one SQLite row
Query = Callable[[str, Record], list[Record]]

_IN_FLIGHT_ERROR = "was being sent when the run stopped: outcome unknown"
_RUN_COLUMNS = (
    "run_id, flow_name, flow_path, region, options, started_at, finished_at, status, counts,"
    " rows, pid, host"
)


@dataclass(frozen=True)
class Outcome:
    """One (row, step) as last recorded; `result` is the saved response, if the step saves."""

    status: str
    attempts: int
    error: str | None
    result: Any = None


@dataclass(frozen=True)
class InFlightSend:
    """A send marked in flight whose answer was never recorded: when it left, and its facts."""

    row_key: str
    step_key: str
    since: float  # unix time of the (first) mark
    facts: dict[str, Any] | None  # settle.py's send_facts; None in journals from before them


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


def recent_runs(query: Query, limit: int) -> list[RunRecord]:
    """The most recent runs, newest first."""
    rows = query(
        f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?",
        (limit,),
    )
    return [_run_record(row) for row in rows]


def run_by_id(query: Query, run_id: str) -> RunRecord | None:
    rows = query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
    return _run_record(rows[0]) if rows else None


def run_outcomes(query: Query, run_id: str) -> dict[tuple[str, str], Outcome]:
    """Every committed outcome of a run, by (row_key, step_key)."""
    rows = query(
        "SELECT row_key, step_key, status, attempts, error, result FROM outcomes WHERE run_id = ?",
        (run_id,),
    )
    return {(r[0], r[1]): _outcome(r[2:]) for r in rows}


def row_outcomes(query: Query, run_id: str, row_key: str) -> dict[str, Outcome]:
    """One row's outcomes by step key: what a resume asks for each row (primary-key lookup)."""
    rows = query(
        "SELECT step_key, status, attempts, error, result FROM outcomes"
        " WHERE run_id = ? AND row_key = ?",
        (run_id, row_key),
    )
    return {r[0]: _outcome(r[1:]) for r in rows}


def in_flight_sends(query: Query, run_id: str) -> list[InFlightSend]:
    """The run's sends still in flight (outcome unknown), oldest first."""
    rows = query(
        "SELECT o.row_key, o.step_key, COALESCE(f.since, 0), f.request FROM outcomes o"
        " LEFT JOIN in_flight f USING (run_id, row_key, step_key)"
        " WHERE o.run_id = ? AND o.status = ? ORDER BY f.since",
        (run_id, IN_FLIGHT),
    )
    return [
        InFlightSend(row, step, since, None if facts is None else json.loads(facts))
        for row, step, since, facts in rows
    ]


def once_run(query: Query, key: str) -> str | None:
    """The run that recorded `once:` key `key`, or None."""
    rows = query("SELECT run_id FROM once_keys WHERE key = ?", (key,))
    return str(rows[0][0]) if rows else None


def _run_record(row: Record) -> RunRecord:
    run_id, name, path, region, options, started, finished, status, counts, rows, pid, host = row
    if status == RUNNING and not _alive(pid, host):
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


def _alive(pid: int | None, host: str | None) -> bool:
    if pid is None or host != socket.gethostname():
        return True  # cannot tell from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _outcome(columns: Record) -> Outcome:
    status, attempts, error, result = columns
    if status == IN_FLIGHT:  # the process stopped between sending and recording the answer
        status, error = UNKNOWN, _IN_FLIGHT_ERROR
    return Outcome(status, attempts, error, None if result is None else json.loads(result))
