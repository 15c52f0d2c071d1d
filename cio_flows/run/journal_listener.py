"""The engine's listener that writes a run's events into the journal as they are emitted."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ..errors import JournalError
from .dispatch import BulkListener
from .events import (
    FAILED,
    Event,
    RowFailed,
    RowFinished,
    RunError,
    RunFinished,
    RunStarted,
    StepFinished,
)

if TYPE_CHECKING:
    from .journal import Journal

# (row_key, step_key, status, attempts, error, result, request_hash)
OutcomeFields = tuple[str, str, str, int, str | None, Any, int | None]

# Step keys of errors that belong to no step: a row that could not start, a run that broke.
ROW_ERROR, RUN_ERROR = "(row)", "(run)"


class JournalListener(BulkListener):
    """A listener recording the outcomes of run `run_id` as the engine emits them.

    A run in several processes (processes.py) splits the work: each worker process records
    its rows' outcomes (`run=False`), the parent the run's start, progress and end
    (`outcomes=False`).
    """

    def __init__(
        self, journal: Journal, run_id: str, *, outcomes: bool = True, run: bool = True
    ) -> None:
        self.journal = journal
        self.run_id = run_id
        self.outcomes = outcomes
        self.run = run

    def __call__(self, event: Event) -> None:
        journal, run_id, outcomes, run = self.journal, self.run_id, self.outcomes, self.run
        if isinstance(event, StepFinished) and not outcomes:
            journal.count_outcomes(run_id, [event.status])
        elif isinstance(event, RowFailed) and not outcomes:
            journal.count_outcomes(run_id, [FAILED])
        elif not run and isinstance(event, RunFinished):
            journal.flush()
        elif not run and isinstance(event, RowFinished | RunStarted):
            pass
        elif isinstance(event, StepFinished):
            self._record_once(event)
            journal.record(run_id, *_outcome(event))
        elif isinstance(event, RowFailed | RunError):
            # Not a step's outcome: kept under a key no resume looks up, for the record.
            row = event.row_number if isinstance(event, RowFailed) else None
            where = "-" if row is None else f"row {row}"
            what = ROW_ERROR if isinstance(event, RowFailed) else RUN_ERROR
            journal.record(run_id, where, what, FAILED, 0, event.error)
        elif isinstance(event, RowFinished):
            journal.count_row(run_id)
        elif isinstance(event, RunStarted):
            if not journal.is_running_here(run_id):
                journal.start_run(run_id, event.flow_path, event.flow_name, event.region)
        elif isinstance(event, RunFinished):
            with contextlib.suppress(JournalError):  # in `failure`: the caller exits 4
                journal.finish_run(run_id, event.summary)

    def many(self, events: Sequence[Event]) -> None:
        """A batch's outcomes, or a chunk's finished rows, in one call: what one call an event
        cost (a lock, a check of the buffer) is paid once. Anything else, one at a time."""
        if all(isinstance(event, StepFinished) for event in events):
            steps = cast("Sequence[StepFinished]", events)
            if not self.outcomes:
                self.journal.count_outcomes(self.run_id, [step.status for step in steps])
                return
            for step in steps:
                self._record_once(step)
            outcomes = [_outcome(step) for step in steps]
            try:
                self.journal.record_many(self.run_id, outcomes)
            except JournalError:
                raise
            except Exception:  # one the journal cannot take (a saved value json cannot write)
                self._record_each(outcomes)  # loses only itself, as alone
        elif all(isinstance(event, RowFinished) for event in events):
            if self.run:  # a worker process's rows are counted by the parent
                self.journal.count_row(self.run_id, len(events))
        else:
            for event in events:
                self(event)

    def _record_each(self, outcomes: list[OutcomeFields]) -> None:
        """Each outcome on its own; the first that fails is raised after the others."""
        first: Exception | None = None
        for outcome in outcomes:
            try:
                self.journal.record(self.run_id, *outcome)
            except JournalError:
                raise
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first

    def _record_once(self, event: StepFinished) -> None:
        if event.once_key is not None:  # committed with the outcome, which follows
            row_key = event.row_key or "-"
            self.journal.record_once(event.once_key, self.run_id, row_key, event.step.key)


def _outcome(event: StepFinished) -> OutcomeFields:
    """What the journal keeps of a step's outcome (Journal.record's arguments after run_id)."""
    return (
        event.row_key or "-",
        event.step.key,
        event.status,
        event.attempts,
        event.error,
        event.saved if event.step.save else None,
        event.request_hash,
    )
