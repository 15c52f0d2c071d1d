"""The engine's listener that writes a run's events into the journal as they are emitted."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import JournalError
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

# Step keys of errors that belong to no step: a row that could not start, a run that broke.
ROW_ERROR, RUN_ERROR = "(row)", "(run)"


def journal_listener(
    journal: Journal, run_id: str, *, outcomes: bool = True, run: bool = True
) -> Callable[[Event], None]:
    """A listener recording the outcomes of run `run_id` as the engine emits them.

    A run in several processes (processes.py) splits the work: each worker process records
    its rows' outcomes (`run=False`), the parent the run's start, progress and end
    (`outcomes=False`).
    """

    def listen(event: Event) -> None:
        if isinstance(event, StepFinished) and not outcomes:
            journal.count_outcome(run_id, event.status)
        elif isinstance(event, RowFailed) and not outcomes:
            journal.count_outcome(run_id, FAILED)
        elif not run and isinstance(event, RunFinished):
            journal.flush()
        elif not run and isinstance(event, RowFinished | RunStarted):
            pass
        elif isinstance(event, StepFinished):
            result = event.saved if event.step.save else None
            if event.once_key is not None:  # committed with the outcome, which follows
                journal.record_once(event.once_key, run_id, event.row_key or "-", event.step.key)
            journal.record(
                run_id,
                event.row_key or "-",
                event.step.key,
                event.status,
                event.attempts,
                event.error,
                result,
                event.request_hash,
            )
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

    return listen
