"""A JSON report of one run, written when it finishes.

Only failures and per-step aggregates are kept in memory, never every ok outcome, so a
million-row run costs what its failures cost (and at most `max_failures` of those).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import Location
from ..flow.model import Step
from ..redact import Redactor
from ..run.events import (
    FAILED,
    OK,
    SKIPPED,
    UNKNOWN,
    Event,
    Failure,
    RowFailed,
    RunError,
    RunFinished,
    RunStarted,
    StepFinished,
)
from ..run.journal_schema import RunStatus
from .files import write_file

# step_key of failures that belong to no step (as the journal records them)
ROW_ERROR, RUN_ERROR = "(row)", "(run)"


@dataclass
class StepStats:
    """One step aggregated over rows."""

    name: str
    kind: str
    location: Location
    count: int = 0
    ok: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    latency_ms: float = 0.0  # the sum of per-row latencies: rows overlap, so not a duration
    first_start: float | None = None  # monotonic: when the first row's step began
    last_end: float | None = None  # and when the last one ended

    def add(self, event: StepFinished, now: float | None = None) -> None:
        end = time.monotonic() if now is None else now
        start = end - event.elapsed  # the event arrives as the step ends
        if self.first_start is None or start < self.first_start:
            self.first_start = start
        if self.last_end is None or end > self.last_end:
            self.last_end = end
        self.count += 1
        if event.status == OK:
            self.ok += 1
        elif event.status == FAILED:
            self.failed += 1
        elif event.status == UNKNOWN:
            self.unknown += 1
        elif event.status == SKIPPED:
            self.skipped += 1
        self.latency_ms += event.elapsed * 1000

    def span(self, longest: float | None = None) -> float:
        """Wall seconds from the step's first row starting to its last row ending (at most
        `longest`, the run's own duration: both are measured, a hair apart)."""
        if self.first_start is None or self.last_end is None:
            return 0.0
        wall = self.last_end - self.first_start
        return wall if longest is None else min(wall, longest)

    def as_dict(self, longest: float | None = None) -> dict[str, Any]:
        ran = self.count - self.skipped
        return {
            "name": self.name,
            "kind": self.kind,
            "location": str(self.location),
            "count": self.count,
            "ok": self.ok,
            "failed": self.failed,
            "unknown": self.unknown,
            "skipped": self.skipped,
            "elapsed_ms": round(self.span(longest) * 1000, 3),  # wall: first row to last
            "latency_ms": round(self.latency_ms, 3),  # summed over rows
            "avg_ms": round(self.latency_ms / ran, 3) if ran else 0.0,
        }


class RunCollector:
    """Step stats and failures of one run, shared by the JSON and JUnit reports."""

    def __init__(
        self,
        *,
        max_failures: int = 10_000,
        per_step: int | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.max_failures = max_failures
        self.per_step = per_step  # at most this many failures kept for each step
        self.redact = redactor or (lambda text: text)
        self.started: RunStarted | None = None
        self.started_at: datetime | None = None
        self.steps: dict[str, StepStats] = {}  # by step key, in the order first seen
        self.failures: list[dict[str, Any]] = []
        self.failures_omitted = 0
        self._lock = threading.Lock()

    def add(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, RunStarted):
                self.started, self.started_at = event, datetime.now(UTC)
            elif isinstance(event, StepFinished):
                self._step(event)
            elif isinstance(event, RowFailed | RunError):
                self._keep(error_entry(event, self.redact))

    def _step(self, event: StepFinished) -> None:
        step = event.step
        stats = self.steps.get(step.key)
        if stats is None:
            stats = self.steps[step.key] = StepStats(step.name, step.kind, step.location)
        stats.add(event)
        if event.status not in (FAILED, UNKNOWN):
            return
        kept_for_step = stats.failed + stats.unknown - 1
        if self.per_step is not None and kept_for_step >= self.per_step:
            self.failures_omitted += 1
            return
        self._keep(failure_entry(step, event, self.redact))

    def _keep(self, entry: dict[str, Any]) -> None:
        if len(self.failures) >= self.max_failures:
            self.failures_omitted += 1
        else:
            self.failures.append(entry)


Redact = Callable[[str], str]  # a Redactor, or what stands for one


def failure_entry(step: Step, event: StepFinished, redact: Redact) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "row": event.row_number,
        "row_key": event.row_key,
        "step": step.name,
        "step_key": step.key,
        "kind": step.kind,
        "status": event.status,
        "error": redact(event.error) if event.error else None,
        "location": str(step.location),
    }
    if event.failure is not None:
        entry["failure"] = failure_facts(event.failure, redact)
    return entry


def error_entry(event: RowFailed | RunError, redact: Redact) -> dict[str, Any]:
    """A row that could not start, or the run breaking: failures of no step."""
    row = event.row_number if isinstance(event, RowFailed) else event.failure.row
    location = event.failure.location
    return {
        "row": row,
        "row_key": None,
        "step": None,
        "step_key": ROW_ERROR if isinstance(event, RowFailed) else RUN_ERROR,
        "kind": None,
        "status": FAILED,
        "error": redact(event.error),
        "location": str(location) if location else None,
        "failure": failure_facts(event.failure, redact),
    }


def failure_facts(failure: Failure | None, redact: Redact) -> dict[str, Any] | None:
    """The structured failure, its texts redacted like the message."""
    if failure is None:
        return None
    return {
        "kind": failure.kind,
        "location": str(failure.location) if failure.location else None,
        "expected": redact(failure.expected) if failure.expected else failure.expected,
        "found": redact(failure.found) if failure.found else failure.found,
        "outcome": failure.outcome,
        "status": failure.status,
    }


class JsonReport:
    """Listener: on RunFinished writes the report to `path` (atomically)."""

    def __init__(
        self, path: str | Path, *, redactor: Redactor | None = None, max_failures: int = 10_000
    ) -> None:
        self.path = Path(path)
        self.collector = RunCollector(max_failures=max_failures, redactor=redactor)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            write_json(self.path, self.report(event))
        else:
            self.collector.add(event)

    def report(self, finished: RunFinished) -> dict[str, Any]:
        c, s = self.collector, finished.summary
        started = c.started
        return {
            "run_id": s.run_id,
            "flow": s.flow_name,
            "flow_path": started.flow_path if started else None,
            "region": started.region if started else None,
            "status": (
                RunStatus.INTERRUPTED
                if s.interrupted
                else RunStatus.PASSED
                if s.ok
                else RunStatus.FAILED
            ).value,
            "started_at": c.started_at.isoformat() if c.started_at else None,
            "finished_at": datetime.now(UTC).isoformat(),
            "elapsed": round(s.elapsed, 3),
            "counts": dict(s.counts),
            "rows": s.rows,
            "failed_rows": list(s.failed_rows),
            "requests": s.requests,
            "retries": s.retries,
            "throttled": s.throttled,
            "processes": s.processes,
            "interrupted": s.interrupted,
            "settled": [dict(item) for item in s.settled],
            "steps": [stats.as_dict(s.elapsed) for stats in c.steps.values()],
            "failures": c.failures,
            "failures_omitted": c.failures_omitted,
        }


def write_json(path: Path, data: Any) -> None:
    """Write whole or not at all (files.write_file: through links, into devices)."""
    write_file(path, (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))
