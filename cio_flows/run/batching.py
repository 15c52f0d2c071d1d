"""Batched chunks of rows: a step's identify/track for many rows share batch calls.

Steps still run in order within each row: step N is settled for every row of the chunk before
step N+1 starts. Mixed into the Executor, whose per-row helpers it uses.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import FlowInputError, TransportError
from ..flow.conditions import holds
from ..flow.model import Step
from ..wire.kinds.batching import (
    BATCH_KINDS,
    MAX_ITEM_BYTES,
    batch_errors,
    batch_item,
    batch_request,
    item_size,
    split_batches,
)
from .events import FAILED, SKIPPED, StepFinished
from .rows import Row

if TYPE_CHECKING:
    from .executor import _RowState


class BatchedChunks:
    def batchable(self, step: Step) -> bool:
        return step.kind in BATCH_KINDS and step.loop is None and step.wait_until is None

    def _run_chunk(self, rows: list[Row]) -> None:
        states = [s for s in map(self._start_row, rows) if s is not None]
        for step in self.run.flow.all_steps:
            if self._stop.is_set():
                return
            if not self.batchable(step):
                for state in states:
                    self._record(state, self._step_for_row(step, state))
                continue
            pending: list[tuple[_RowState, dict[str, Any]]] = []
            for state in states:
                outcome, item = self._batch_entry(step, state)
                if outcome is not None:
                    self._record(state, outcome)
                else:
                    pending.append((state, item))
            for state, outcome in self._send_batches(step, pending):
                self._record(state, outcome)
        for state in states:
            self._finish_row(state.number, state.row_key, failed=state.failed)

    def _batch_entry(self, step: Step, state: _RowState):
        """(outcome, None) when the step is settled without sending, else (None, batch item)."""
        if state.failed and step.section == "steps":
            return StepFinished(step, state.number, state.row_key, SKIPPED, 0.0), None
        replay = self._replay(step, state)
        if replay is not None:
            return replay, None
        try:
            if step.when is not None and not holds(step.when, state.context):
                return StepFinished(
                    step, state.number, state.row_key, SKIPPED, 0.0, detail="when is false"
                ), None
            payload = self.run.render(step, state.context, state.row)
            keys = self.run.keys(state.row_key, step)
            item = batch_item(step.kind, payload, keys, self.run.people_family)
        except FlowInputError as exc:
            error = exc.with_context(step=step.name, row=state.number).describe()
            return StepFinished(step, state.number, state.row_key, FAILED, 0.0, error=error), None
        if item is None:  # cannot go in a batch (e.g. anonymous on Track): send alone
            return self._run_step(step, state), None
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            error = f"step '{step.name}': row {state.number}: payload is {size} bytes; Customer.io takes at most {MAX_ITEM_BYTES} per item"
            return StepFinished(step, state.number, state.row_key, FAILED, 0.0, error=error), None
        return None, (item, size)

    def _send_batches(self, step: Step, pending):
        """Send pending items in batches; yield (row state, outcome) per item."""
        family = self.run.people_family
        sizes = [size for _, (_, size) in pending]
        for indexes in split_batches(sizes):
            group = [pending[i] for i in indexes]
            started = time.monotonic()
            request = batch_request(family, [item for _, (item, _) in group])
            try:
                response = self.transport.send(request)
            except TransportError as exc:
                elapsed = time.monotonic() - started
                for state, _ in group:
                    yield (
                        state,
                        StepFinished(
                            step,
                            state.number,
                            state.row_key,
                            FAILED,
                            elapsed,
                            exc.attempts,
                            f"batch: {exc}",
                        ),
                    )
                continue
            elapsed = time.monotonic() - started
            rejected = batch_errors(response.body) if response.status == 207 else {}
            for position, (state, _) in enumerate(group):
                if position in rejected:
                    error = f"step '{step.name}': row {state.number}: rejected in batch: {rejected[position]}"
                    outcome = StepFinished(
                        step, state.number, state.row_key, FAILED, elapsed, response.attempts, error
                    )
                else:
                    outcome = self._settle(step, state, {}, elapsed, response.attempts, "batched")
                yield state, outcome
