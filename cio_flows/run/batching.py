"""Batched steps: a step's people writes (identify, track, page, ...) for the rows of a chunk
share batch calls.

Each row goes through the same pipeline as a row run alone (skip, replay, `when`, settle);
only the sending differs. The executor runs step N for every row of a chunk before step N+1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NamedTuple

from ..errors import FlowInputError, TransportError
from ..flow.model import Step
from ..wire.kinds.batching import (
    MAX_ITEM_BYTES,
    batch_errors,
    batch_item,
    batch_request,
    batchable_kind,
    encode_item,
    split_batches,
)
from .events import HTTP, PAYLOAD, TRANSPORT, StepFinished
from .steps import RowState, StepPipeline

Outcome = tuple[RowState, StepFinished]
CHUNK_ROWS = 1000  # rows that take each step together (the Executor's chunk_size; plan.py's too)


def batchable(step: Step) -> bool:
    """Whether a step's requests can go in batch calls (one people write of a batchable kind)."""
    return (
        batchable_kind(step.kind)
        and step.loop is None
        and step.wait_until is None
        and step.expect_status is None  # a batch answers for many: no one status to expect
        and step.validate  # an unchecked payload goes alone: it may refuse the whole batch
    )


class _Item(NamedTuple):  # a tuple: made per event, at half a frozen dataclass's cost
    state: RowState
    body: dict[str, Any]
    encoded: bytes  # its JSON, made once: sized here, sent as is

    @property
    def size(self) -> int:
        return len(self.encoded)


class CpuTurns:
    """Lets at most `turns` chunks do Python work at once; a chunk gives its turn back while its
    batch is on the wire. More chunks can then wait on the network together without more threads
    fighting over the GIL (which costs CPU: measured 3.0 CPU s on 4 threads, 3.9 on 8)."""

    def __init__(self, turns: int) -> None:
        self._turns = threading.Semaphore(turns)

    def __enter__(self) -> CpuTurns:
        self._turns.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._turns.release()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Waiting (on the network) without holding a turn."""
        self._turns.release()
        try:
            yield
        finally:
            self._turns.acquire()


class BatchedStep:
    """One batchable step over the rows of a chunk."""

    def __init__(self, pipeline: StepPipeline, turns: CpuTurns | None = None) -> None:
        self.pipeline = pipeline
        self.turns = turns

    def _waiting(self) -> AbstractContextManager[None]:
        return self.turns.released() if self.turns else nullcontext()

    def run(
        self, step: Step, states: Iterable[RowState], stopping: Callable[[], bool] = lambda: False
    ) -> Iterator[list[Outcome]]:
        """(row, outcome) for each row, in lists: first those settled without a batch, one at a
        time, then each batch's together. Once `stopping()` (Ctrl-C), nothing more is sent; a
        batch on the wire is still answered for, row by row, so its outcomes are recorded
        rather than sent again on resume."""
        pending: list[_Item] = []
        for state in states:
            if stopping():
                return
            outcome = self.pipeline.settle_early(step, state)
            if outcome is None:
                outcome = self._entry(step, state, pending)
            if outcome is not None:
                yield [(state, outcome)]
        yield from self._send(step, pending, stopping)

    def _entry(self, step: Step, state: RowState, pending: list[_Item]) -> StepFinished | None:
        """Queue the row's batch item; or its outcome when it fails or must go alone."""
        pipeline, run = self.pipeline, self.pipeline.run
        try:
            payload = pipeline.render(step, state, pipeline.context(step, state))
            keys = run.keys(state.row_key, step)
            item = batch_item(step.kind, payload, keys, run.people_family)
        except FlowInputError as exc:
            return pipeline.failed(step, state, exc)
        if item is None:  # cannot go in a batch (e.g. anonymous on Track): send alone
            with self._waiting():
                return pipeline.send(step, state)
        encoded = encode_item(item)
        size = len(encoded)
        if size > MAX_ITEM_BYTES:
            message = (
                f"step '{step.name}': row {state.number}: payload is {size} bytes;"
                f" Customer.io takes at most {MAX_ITEM_BYTES} per item"
            )
            expected, found = f"at most {MAX_ITEM_BYTES} bytes", f"{size} bytes"
            return pipeline.failed_with(
                step, state, PAYLOAD, message, expected=expected, found=found
            )
        pending.append(_Item(state, item, encoded))
        return None

    def _send(
        self, step: Step, pending: list[_Item], stopping: Callable[[], bool]
    ) -> Iterator[list[Outcome]]:
        """Send the items in batches; each batch's (row, outcome) pairs, one per item."""
        pipeline = self.pipeline
        family = pipeline.run.people_family
        for indexes in split_batches([item.size for item in pending]):
            if stopping():
                return
            group = [pending[i] for i in indexes]
            started = time.monotonic()
            bodies, encoded = [item.body for item in group], [item.encoded for item in group]
            request = batch_request(family, bodies, encoded)
            try:
                with self._waiting():
                    response = pipeline.transport.send(request)
            except TransportError as exc:
                if exc.attempts == 0 and stopping():
                    return  # refused at its start by a stopping run: sent nothing, a resume runs it
                elapsed = time.monotonic() - started
                kind = HTTP if exc.status is not None else TRANSPORT
                # a batch is safe to resend: never unknown
                yield [
                    (item.state, pipeline.failed_with(
                        step, item.state, kind, f"batch: {exc}", elapsed, exc.attempts,
                        status=exc.status,
                    ))
                    for item in group
                ]  # fmt: skip
                continue
            elapsed = time.monotonic() - started
            rejected = batch_errors(response.body, len(group)) if response.status == 207 else {}
            if rejected is None:  # which items were kept is unknown: each fails (safe to resend)
                yield [
                    (item.state, pipeline.failed_with(
                        step, item.state, HTTP,
                        f"step '{step.name}': row {item.state.number}: HTTP 207 whose errors"
                        " name no item of the batch: every item is failed (resume resends them)",
                        elapsed, response.attempts, status=response.status,
                    ))
                    for item in group
                ]  # fmt: skip
                continue
            yield [
                (item.state, self._answered(step, item.state, rejected.get(position), elapsed,
                                            response.attempts, response.status))
                for position, item in enumerate(group)
            ]  # fmt: skip

    def _answered(
        self,
        step: Step,
        state: RowState,
        rejected: str | None,
        elapsed: float,
        attempts: int,
        status: int,
    ) -> StepFinished:
        """One item's outcome in a batch that was answered: kept, or rejected by name."""
        if rejected is None:
            return self.pipeline.settle(step, state, {}, elapsed, attempts, "batched")
        message = f"step '{step.name}': row {state.number}: rejected in batch: {rejected}"
        return self.pipeline.failed_with(
            step, state, HTTP, message, elapsed, attempts, found=rejected, status=status
        )
