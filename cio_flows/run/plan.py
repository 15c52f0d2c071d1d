"""The requests a run would send, as it would send them: batches where the run batches.

`planned_requests` walks the rows as the executor does (chunks of CHUNK_ROWS, step N for every
row of a chunk before step N+1) with the run's own pipeline: `when`, skipping the rest of a
failed row, and for batchable steps the run's own BatchedStep, whose transport here records
the batch instead of sending it. So a plan lists one entry per request the run sends, with
its item count and size in bytes. A step whose payload reads an earlier response cannot be
rendered ahead: it is listed once per row (or once per chunk of batched rows) without a body.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Container, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import FlowInputError
from ..flow.jinja_env import as_expression
from ..flow.model import Step
from ..flow.templating import compile_template
from ..wire.kinds import Request, Response
from ..wire.kinds.batching import encode_item
from .batching import CHUNK_ROWS, BatchedStep, batchable
from .events import FAILED, SKIPPED, UNKNOWN, Failure, StepFinished
from .prepare import PreparedRun
from .rows import Row
from .steps import RowState, StepPipeline, failure_of, row_failure


@dataclass(frozen=True)
class PlannedRequest:
    """One request of the run (a batch, or a single call); `request` None when it depends."""

    step: Step
    first_row: int | None
    last_row: int | None
    request: Request | None
    items: int = 1  # a batch's items
    body: bytes | None = None  # the JSON body as the run encodes it
    depends_on: tuple[str, ...] = ()
    batched: bool = False  # a /v1/batch or /api/v2/batch call carrying `items` rows

    @property
    def size(self) -> int | None:
        return None if self.body is None else len(self.body)


@dataclass(frozen=True)
class PlannedFailure:
    """A row the run would fail on (its step does not render or validate): sent nothing more."""

    step: Step | None
    row: int | None
    failure: Failure


@dataclass
class _Recorder:
    """A transport that keeps what it is asked to send and answers 200 with no body."""

    sent: list[Request] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    def send(self, request: Request, accept: Container[int] = ()) -> Response:
        self.sent.append(request)
        return Response(200, {}, {}, 1)

    def interrupt(self) -> None:
        pass


Planned = PlannedRequest | PlannedFailure | StepFinished


class Planner:
    """Plans a prepared run; `skipped` counts the (row, step) pairs the run would not send."""

    def __init__(self, run: PreparedRun, *, batch: bool | None = None) -> None:
        self.run = run
        self.recorder = _Recorder()
        self.pipeline = StepPipeline(run, self.recorder)  # type: ignore[arg-type]
        self.batched = BatchedStep(self.pipeline)
        wanted = run.options.batch if batch is None else batch
        self.batch = wanted and run.data is not None and any(map(batchable, run.flow.all_steps))
        self._depends = {step.key: _depends(run, step) for step in run.flow.all_steps}
        self.rows = 0  # rows planned so far

    def __iter__(self) -> Iterator[PlannedRequest | PlannedFailure | StepFinished]:
        """PlannedRequest per request, PlannedFailure per failing row, StepFinished per skip."""
        processes = self.processes()
        if processes > 1:
            yield from self._in_processes(processes)
            return
        for chunk in self._chunks():
            yield from self._chunk(chunk)

    def processes(self) -> int:
        """Worker processes for a batched plan of a big file: chunks are independent, so both
        cores render (set CIO_FLOWS_PLAN_PROCESSES to choose; 1 plans in this process)."""
        wanted = os.environ.get("CIO_FLOWS_PLAN_PROCESSES")
        if wanted is not None:
            return max(1, int(wanted)) if self.batch else 1
        big = self.run.data is not None and self.run.data.path.stat().st_size > PARALLEL_BYTES
        fork = "fork" in multiprocessing.get_all_start_methods()
        return min(2, os.cpu_count() or 1) if self.batch and big and fork else 1

    def _chunks(self) -> Iterator[list[Row | None]]:
        chunk: list[Row | None] = []
        for row in self.run.rows():
            self.rows += row is not None
            chunk.append(row)
            if len(chunk) >= (CHUNK_ROWS if self.batch else 1):
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _in_processes(self, processes: int) -> Iterator[Planned]:
        """Chunks planned by forked copies of this planner, answered in the run's order; at
        most two chunks per process in flight, so memory stays flat over any file."""
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            processes, mp_context=context, initializer=_adopt, initargs=(self,)
        ) as pool:
            pending: deque[Future[list[Planned]]] = deque()
            for chunk in self._chunks():
                pending.append(pool.submit(_plan_chunk, chunk))
                if len(pending) >= 2 * processes:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()

    def _start(self, row: Row | None) -> RowState | PlannedFailure:
        try:
            context = self.run.base_context(row)
            row_key = self.run.row_key(row, context)
        except FlowInputError as exc:
            number = row.number if row else None
            return PlannedFailure(None, number, row_failure(exc, number))
        return RowState(row, row_key, context, {})

    def _chunk(self, rows: list[Row | None]) -> Iterator[Planned]:
        states: list[RowState] = []
        for row in rows:
            state = self._start(row)
            if isinstance(state, PlannedFailure):
                yield state
            else:
                states.append(state)
        for step in self.run.flow.all_steps:
            depends = self._depends[step.key]
            if self.batch and batchable(step) and not depends:
                yield from self._batched(step, states)
                continue
            for state in states:
                yield from self._single(step, state, depends)

    def _batched(self, step: Step, states: list[RowState]) -> Iterator[Planned]:
        sent = self.recorder.sent
        request: Request | None = None
        rows: list[int | None] = []
        # BatchedStep yields the rows settled without a batch first, then each batch's rows
        # right after it is sent: the outcomes following a send are that batch's, in order.
        for state, outcome in self.batched.run(step, states):
            if sent:
                request, rows = sent.pop(), []
            if request is not None:
                rows.append(state.number)
                if len(rows) == len(request.body["batch"]):
                    yield self._batch(step, request, rows)
                    request = None
            yield from self._outcome(state, outcome)

    def _batch(self, step: Step, request: Request, rows: list[int | None]) -> PlannedRequest:
        body = request.body.encoded  # an EncodedBody: the bytes the run sends
        return PlannedRequest(step, rows[0], rows[-1], request, len(rows), body, batched=True)

    def _outcome(self, state: RowState, outcome: StepFinished) -> Iterator[Planned]:
        if outcome.status in (FAILED, UNKNOWN) and outcome.failure is not None:
            state.failed = True  # (a failed or unknown step always carries its failure)
            yield PlannedFailure(outcome.step, state.number, outcome.failure)
        elif outcome.status == SKIPPED:
            yield outcome

    def _single(self, step: Step, state: RowState, depends: tuple[str, ...]) -> Iterator[Planned]:
        if depends:  # needs an earlier answer: whether and what it sends is known only then
            if not (state.failed and step.section == "steps"):
                yield PlannedRequest(step, state.number, state.number, None, depends_on=depends)
            return
        outcome = self.pipeline.settle_early(step, state)
        if outcome is not None:
            yield from self._outcome(state, outcome)
            return
        run = self.run
        try:
            context = self.pipeline.context(step, state)
            requests = []
            for key, item_context in run.loop_contexts(step, state.row_key, context):
                payload = run.render(step, item_context, state.row)
                requests.append(run.build_request(step, payload, run.keys(key, step)))
        except FlowInputError as exc:
            state.failed = True
            yield PlannedFailure(step, state.number, failure_of(exc, step, state.number))
            return
        for request in requests:
            body = None if request.body is None else encode_item(request.body)
            yield PlannedRequest(step, state.number, state.number, request, 1, body)


# A data file past this size is planned by two processes (below it, starting them costs more).
PARALLEL_BYTES = 1 << 20
_ADOPTED: list[Planner] = []  # in a worker process: the planner it was forked with


def _adopt(planner: Planner) -> None:
    _ADOPTED.append(planner)


def _plan_chunk(rows: Iterable[Row | None]) -> list[Planned]:
    return list(_ADOPTED[0]._chunk(list(rows)))


def _depends(run: PreparedRun, step: Step) -> tuple[str, ...]:
    """What a step needs from earlier answers: its payload's, and its `when`'s."""
    depends = run.depends_on(step)
    if step.when is not None and _reads_steps(step.when.expression):
        depends = (*depends, "steps (when)")
    return depends


def _reads_steps(expression: str) -> bool:
    from jinja2 import meta

    try:
        ast = compile_template(as_expression(expression)).ast
    except Exception:  # a syntax error: the run reports it; the plan evaluates it as the run does
        return False
    return "steps" in meta.find_undeclared_variables(ast)


def planned_requests(run: PreparedRun, *, batch: bool | None = None) -> Iterator[Any]:
    """Every request the run would send (PlannedRequest), failing rows (PlannedFailure) and
    skipped steps (StepFinished), in the run's order; sends nothing."""
    return iter(Planner(run, batch=batch))
