"""Flows from a notebook: the plan as a table, and a run's step results as a table.

The same public functions the CLI calls (`api.validate_flow`, and `api.run_flow`, the front door
with its journal and resume); the table rows come from the plan's items and StepFinished, never from
request headers, so no key can show.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .. import api
from ..redact import Redactor
from ..run.events import Event, RunSummary, StepFinished
from ..run.plan import PlannedFailure, PlannedRequest, Planner
from ..run.prepare import PreparedRun, RunOptions
from ..wire.sessions import auth_description

PLAN_COLUMNS = [
    "step", "kind", "row", "last_row", "items", "method", "url", "auth", "body", "depends_on",
    "error",
]  # fmt: skip
RESULT_COLUMNS = ["step", "kind", "row", "row_key", "status", "ms", "attempts", "error", "detail"]


def plan_table(flow_path: str | Path, options: RunOptions) -> pd.DataFrame:
    """One row per line of `cio-flows plan --format jsonl`: each request the run would send (a
    batch is one row; `row`..`last_row` its rows), each row it would fail on (`error`); sends
    nothing. The same walker as the run (`when`, batching, `finally`), keys and env secrets
    masked as the CLI masks them."""
    run = api.validate_flow(flow_path, options)
    redact = run.redactor()
    rows = [
        _planned_row(run, item, redact)
        for item in Planner(run)
        if isinstance(item, PlannedRequest | PlannedFailure)
    ]
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def _planned_row(
    run: PreparedRun, planned: PlannedRequest | PlannedFailure, redact: Redactor
) -> dict[str, Any]:
    step = planned.step
    row: dict[str, Any] = {"step": step.name if step else None, "kind": step.kind if step else None}
    if isinstance(planned, PlannedFailure):
        row.update(row=planned.row, error=redact(planned.failure.message))
        return row
    row.update(row=planned.first_row, depends_on=", ".join(planned.depends_on) or None)
    request = planned.request
    if request is None:  # rendered only when the run reaches it
        return row
    body = None  # keys sorted: short fields (event, type) first, where a narrow column shows them
    if request.body is not None:
        body = redact(json.dumps(request.body, ensure_ascii=False, sort_keys=True))
    row.update(
        last_row=planned.last_row,
        items=planned.items,
        method=request.method,
        url=request.url(run.endpoints.root(request.family)),
        auth=auth_description(request.family),
        body=body,
    )
    return row


class StepCollector:
    """A listener keeping every StepFinished, in the order the engine reported them."""

    def __init__(self, redact: Redactor) -> None:
        self.steps: list[StepFinished] = []
        self._redact = redact

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepFinished):
            self.steps.append(event)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([self._row(e) for e in self.steps], columns=RESULT_COLUMNS)

    def _row(self, event: StepFinished) -> dict[str, Any]:
        return {
            "step": event.step.name,
            "kind": event.step.kind,
            "row": event.row_number,
            "row_key": event.row_key,
            "status": event.status,
            "ms": round(event.elapsed * 1000, 1),
            "attempts": event.attempts,
            "error": self._redact(event.error) if event.error else None,
            "detail": self._redact(str(event.detail)) if event.detail is not None else None,
        }


def run_table(flow_path: str | Path, options: RunOptions) -> pd.DataFrame:
    """Run the flow; one row per step result. The RunSummary is in `.attrs["summary"]`."""
    redact = api.redactor(options)
    collector = StepCollector(redact)
    summary: RunSummary = api.run_flow(flow_path, options, [collector])
    table = collector.table()
    table.attrs["summary"] = summary
    return table


def describe_summary(summary: RunSummary) -> str:
    """One line a reader can check at a glance."""
    counts = ", ".join(f"{n} {status}" for status, n in summary.counts.items() if n)
    return (
        f"{'passed' if summary.ok else 'failed'}: {counts or 'nothing ran'} in "
        f"{summary.elapsed:.2f} s, {summary.requests} request(s), run id {summary.run_id}"
    )
