"""Only changed rows (`run --changed`): each run keeps, per row key and step, a hash of the
request the step renders for that row; `--changed` leaves out the rows whose hashes all equal
those of the last passed run of the same flow in the same journal. New keys are sent.

A run keeps them as it goes (RequestHasher): the hash of each payload it renders travels on
the step's StepFinished and the journal commits it with the outcome, so no row is rendered
twice, and each process of a run writes its own rows' hashes. A step the run did not render
for a row (`when` false, an earlier step failed) is hashed on the side. `run --changed` needs
every row's hashes before sending, to choose the rows: it hashes them in one pass first
(hash_rows) and keeps those.
A step whose payload reads an earlier answer (`steps.NAME`), or loops, cannot be rendered
before the run: its hash is that of the step and the row's data, so it changes when either does.
Templates that differ on every run (`run.id`, `now()`, `uuid()`) make every row changed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import FlowInputError
from ..flow.model import Step
from .journal_schema import INSERT_REQUEST_HASHES, PASSED, open_database
from .prepare import PreparedRun
from .resume_inputs import step_hash
from .rows import Row

_BATCH = 5000  # rows per transaction


@dataclass
class ChangedRows:
    """What the pass found: the run compared with (None: no passed run), the rows left out."""

    compared_with: str | None = None
    unchanged: set[int] = field(default_factory=set)  # row numbers
    # Why the hashes could not be kept (the journal's disk full, say): the run goes on, and
    # stops sending when its own outcomes cannot be written, as any run does.
    not_kept: str | None = None

    def note(self) -> str:
        if self.compared_with is None:
            return "--changed: no earlier passed run of this flow in the journal: every row is sent"
        return (
            f"--changed: {len(self.unchanged):,} row(s) unchanged since run"
            f" {self.compared_with}, left out"
        )


def _digest(value: Any) -> int:
    try:
        text = orjson.dumps(
            value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
        )
    except TypeError:  # an integer past 64 bits (a row's 1e300 | int), which orjson refuses
        text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class _StepPlan:
    step: Step
    renderable: bool  # its payload renders before the run (no earlier answer, no loop)
    fingerprint: str  # what the step does (resume_inputs.step_hash): the fallback's part


def _plans(run: PreparedRun) -> list[_StepPlan]:
    return [
        _StepPlan(step, step.loop is None and not run.depends_on(step), step_hash(step))
        for step in run.flow.all_steps
    ]


def row_hashes(
    run: PreparedRun, row: Row, plans: list[_StepPlan] | None = None
) -> tuple[str, dict[str, int]] | None:
    """(row key, {step key: hash}); None when the row's vars or key do not render (the row
    fails on its own when it runs, and is always sent)."""
    try:
        context = run.base_context(row)
        key = run.row_key(row, context)
    except FlowInputError:
        return None
    scopes: dict[str, dict[str, Any]] = {}
    return key, {
        plan.step.key: _step_digest(run, plan, context, scopes, row)
        for plan in plans or _plans(run)
    }


def _step_digest(
    run: PreparedRun,
    plan: _StepPlan,
    context: dict[str, Any],
    scopes: dict[str, dict[str, Any]],
    row: Row,
) -> int:
    step = plan.step
    if plan.renderable:
        try:  # not validated: a payload the schema refuses fails when its row runs
            return _digest([step.kind, run.rendered(step, run.step_context(step, context, scopes))])
        except FlowInputError:
            pass
    return _digest([step.kind, plan.fingerprint, row.data])


class RequestHasher:
    """A run's request hashes from what it renders: the same values row_hashes gives.

    `of_payload` hashes a payload the run rendered (before validation, which may fill in a
    schema's defaults); `on_the_side` a step the run did not render for the row."""

    def __init__(self, run: PreparedRun) -> None:
        self.run = run
        self._plans = {plan.step.key: plan for plan in _plans(run)}

    def renders(self, step: Step) -> bool:
        """Whether the step's hash is that of its rendered payload (else of step and row)."""
        return self._plans[step.key].renderable

    def of_payload(self, step: Step, payload: Any) -> int:
        return _digest([step.kind, payload])

    def on_the_side(self, step: Step, row: Row) -> int | None:
        """The step's hash for a row the run did not render it for; None when the row's vars
        do not render (row_hashes keeps nothing for such a row)."""
        plan = self._plans[step.key]
        if not plan.renderable:
            return _digest([step.kind, plan.fingerprint, row.data])
        try:  # the row's context afresh, as row_hashes takes it
            context = self.run.base_context(row)
        except FlowInputError:
            return None
        return _step_digest(self.run, plan, context, {}, row)


class RequestHashes:
    """A run's request hashes in the journal, on a connection of its own (`--changed`): with
    its outcomes (what it sent), or in the request_hashes table (what `--changed` hashed before
    sending, and journals older than the outcomes' column)."""

    def __init__(self, path: Path, *, checked: bool = False) -> None:
        self.db = open_database(path, checked=checked)

    def close(self) -> None:
        self.db.close()

    def last_passed(self, flow_name: str, run_id: str) -> str | None:
        """The most recent passed run of the flow (not `run_id`) that kept hashes."""
        found = self.db.execute(
            "SELECT run_id FROM runs WHERE flow_name = ? AND status = ? AND run_id != ?"
            " AND (EXISTS (SELECT 1 FROM request_hashes h WHERE h.run_id = runs.run_id)"
            " OR EXISTS (SELECT 1 FROM outcomes o WHERE o.run_id = runs.run_id"
            " AND o.request_hash IS NOT NULL))"
            " ORDER BY started_at DESC, run_id DESC LIMIT 1",
            (flow_name, str(PASSED), run_id),
        ).fetchone()
        return None if found is None else str(found[0])

    def of_run(self, run_id: str) -> dict[str, int]:
        """{row key: one hash over its steps} of a run."""
        rows: dict[str, dict[str, int]] = {}
        # a step's hash in both places (a run resumed by a newer cio-flows): its outcome's
        for query in (
            "SELECT row_key, step_key, hash FROM request_hashes WHERE run_id = ?",
            "SELECT row_key, step_key, request_hash FROM outcomes"
            " WHERE run_id = ? AND request_hash IS NOT NULL",
        ):
            for row_key, step_key, value in self.db.execute(query, (run_id,)):
                rows.setdefault(row_key, {})[step_key] = value
        return {key: _digest(sorted(steps.items())) for key, steps in rows.items()}

    def record(self, run_id: str, records: Iterator[tuple[str, str, int]]) -> None:
        batch: list[tuple[str, str, str, int]] = []
        for row_key, step_key, value in records:
            batch.append((run_id, row_key, step_key, value))
            if len(batch) >= _BATCH:
                self._insert(batch)
                batch = []
        if batch:
            self._insert(batch)

    def _insert(self, batch: list[tuple[str, str, str, int]]) -> None:
        with self.db:  # one transaction
            self.db.execute("BEGIN IMMEDIATE")
            INSERT_REQUEST_HASHES(self.db, batch)


def hash_rows(
    run: PreparedRun,
    journal: Path,
    *,
    changed_only: bool,
    record: bool = True,
    checked: bool = False,
) -> ChangedRows:
    """Hash every row before sending (`--changed`); with record, keep the hashes in the
    journal; with changed_only, find the rows whose hashes equal the last passed run's, which
    the run then leaves out. `checked`: the run's Journal has just checked the file intact."""
    found = ChangedRows()
    if run.data is None:
        return found
    try:
        table = RequestHashes(journal, checked=checked)
    except sqlite3.Error:
        return found
    try:
        before: dict[str, int] = {}
        if changed_only:
            found.compared_with = table.last_passed(run.flow.name, run.run_id)
            if found.compared_with is not None:
                before = table.of_run(found.compared_with)

        plans = _plans(run)

        def records() -> Iterator[tuple[str, str, int]]:
            for row in run.rows():
                if row is None:
                    continue
                hashed = row_hashes(run, row, plans)
                if hashed is None:
                    continue
                key, steps = hashed
                if before and before.get(key) == _digest(sorted(steps.items())):
                    found.unchanged.add(row.number)
                for step_key, value in steps.items():
                    yield key, step_key, value

        if record:
            try:
                table.record(run.run_id, records())
            except sqlite3.Error as exc:
                found.not_kept = f"request hashes for --changed not kept: {exc}"
        else:  # `plan --changed`: nothing is run
            for _ in records():
                pass
    finally:
        table.close()
    return found
