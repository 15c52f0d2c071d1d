"""The journal seen whole: one run in detail (`cio-flows runs show`) and pruning old runs
(`cio-flows runs prune`).

Pruning deletes the runs, their outcomes, inputs, in-flight marks and request hashes, then
compacts the file.
It keeps the `once` keys (what makes a `once` step happen once, whatever run did it) and runs
still going.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import JournalError
from .journal_reads import Query, RunRecord, run_by_id
from .journal_schema import IN_FLIGHT, RUNNING, open_database, sqlite_reason
from .resume_inputs import RunInputs, stored_for

FAILURES_SHOWN = 20


@dataclass(frozen=True)
class StepCounts:
    step_key: str
    name: str  # the step's name when the run recorded it, else its key
    counts: dict[str, int] = field(default_factory=dict)  # status -> rows


@dataclass(frozen=True)
class RunDetail:
    record: RunRecord
    inputs: RunInputs | None
    steps: list[StepCounts]
    failures: list[tuple[str, str, str, str]]  # (row key, step, status, error), the first ones
    failures_total: int

    @property
    def duration(self) -> float | None:
        finished = self.record.finished_at
        return None if finished is None else (finished - self.record.started_at).total_seconds()


def run_detail(query: Query, run_id: str) -> RunDetail | None:
    record = run_by_id(query, run_id)
    if record is None:
        return None
    rows = query("SELECT inputs FROM run_inputs WHERE run_id = ?", (run_id,))
    inputs = stored_for(rows[0][0]) if rows else None
    names: dict[str, str] = inputs.names if inputs is not None else {}
    by_step: dict[str, StepCounts] = {}
    for step_key, status, count in query(
        "SELECT step_key, status, COUNT(*) FROM outcomes WHERE run_id = ?"
        " GROUP BY step_key, status",
        (run_id,),
    ):
        if step_key not in by_step:
            by_step[step_key] = StepCounts(step_key, names.get(step_key) or str(step_key))
        shown = "unknown" if status == IN_FLIGHT else str(status)
        counts = by_step[step_key].counts
        counts[shown] = counts.get(shown, 0) + int(count)
    bad = ("failed", "unknown", IN_FLIGHT)
    failures = [
        (
            str(row),
            names.get(step) or str(step),
            "unknown" if status == IN_FLIGHT else str(status),
            str(error or ""),
        )
        for row, step, status, error in query(
            "SELECT row_key, step_key, status, error FROM outcomes WHERE run_id = ?"
            " AND status IN (?, ?, ?) LIMIT ?",
            (run_id, *bad, FAILURES_SHOWN),
        )
    ]
    total = query(
        "SELECT COUNT(*) FROM outcomes WHERE run_id = ? AND status IN (?, ?, ?)", (run_id, *bad)
    )[0][0]
    ordered = sorted(by_step.values(), key=lambda step: _step_order(step.step_key))
    return RunDetail(record, inputs, ordered, failures, int(total))


def _step_order(step_key: str) -> tuple[int, str]:
    """steps.0, steps.1, ..., steps.10, then finally.0 ... (keys sort as written in the flow)."""
    head, _, rest = step_key.partition(".")
    number = rest.split(".")[0].split("~")[0]
    group = 0 if head == "steps" else 1 if head == "finally" else 2
    return (group * 1_000_000 + (int(number) if number.isdigit() else 999_999), step_key)


def prune_runs(path: Path, older_than_days: float, now: float | None = None) -> list[str]:
    """Delete the runs started more than `older_than_days` ago (not those still running) and
    what they recorded, except `once` keys; compact the file. Returns the run ids deleted."""
    cutoff = (time.time() if now is None else now) - older_than_days * 86400
    db = open_database(path)
    try:
        return _prune(db, cutoff)
    except sqlite3.Error as exc:  # locked by a run for longer than the busy timeout, ...
        raise JournalError(path, sqlite_reason(exc)) from None
    finally:
        db.close()


def _prune(db: sqlite3.Connection, cutoff: float) -> list[str]:
    """In one transaction (closing the connection on an error rolls it back)."""
    db.execute("BEGIN IMMEDIATE")
    old = [
        str(row[0])
        for row in db.execute(
            "SELECT run_id FROM runs WHERE started_at < ? AND status != ?", (cutoff, RUNNING)
        ).fetchall()
    ]
    tables = ["outcomes", "in_flight", "run_inputs", "runs"]
    if db.execute(  # --changed's hashes (run/changed.py), once a run kept some
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'request_hashes'"
    ).fetchone():
        tables.insert(0, "request_hashes")
    for table in tables:
        db.executemany(f"DELETE FROM {table} WHERE run_id = ?", [(run_id,) for run_id in old])
    db.execute("COMMIT")
    if old:
        db.execute("VACUUM")  # give the space back: the file is what grew
    return old
