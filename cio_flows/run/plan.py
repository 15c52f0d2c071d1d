"""A plan is the run over a recording transport: the requests it lists are the ones the run sends.

`Planner` walks the rows with the run's own Executor (the same units: one row, or chunks of
CHUNK_ROWS rows whose batchable steps share batch calls; step N for every row of a chunk before
step N+1) and the run's own pipeline: `when`, `loop`, `use`, `finally`, skipping the rest of a
failed row, and the run's BatchedStep. Only the sending differs (`PlanPipeline`): a step's
first request is recorded instead of sent, nothing is awaited, saved or expected. A step that
reads an earlier answer (`steps.X` in its payload, `when`, `loop` or a used flow's `with`)
cannot be rendered ahead: it is listed with what it depends on, without a body.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import FlowInputError, PayloadError
from ..flow.jinja_env import as_expression
from ..flow.model import Step
from ..flow.templating import compile_template
from ..wire.kinds import Request
from ..wire.kinds.batching import EncodedBody, encode_item
from ..wire.protocol import RecordingTransport
from .events import FAILED, OK, SKIPPED, UNKNOWN, Event, Failure, RowFailed, StepFinished
from .executor import Executor
from .prepare import PreparedRun
from .steps import CountingSend, RowState, StepPipeline


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

    @property
    def row_number(self) -> int | None:
        """The row (the first of a batch's rows)."""
        return self.first_row


@dataclass(frozen=True)
class PlannedFailure:
    """A row the run would fail on (its step does not render or validate): sent nothing more."""

    step: Step | None
    row: int | None
    failure: Failure
    error: Exception | None = field(default=None, compare=False)  # what raised, when known


Planned = PlannedRequest | PlannedFailure | StepFinished


@dataclass(frozen=True)
class Pending:
    """The outcome detail of a step a plan cannot render: it reads these earlier answers."""

    depends_on: tuple[str, ...]


class PlanPipeline(StepPipeline):
    """The run's pipeline with a recording transport: a step's first request is recorded (the
    rest depend on answers), nothing is awaited, saved or checked against `expect`."""

    def __init__(self, run: PreparedRun, transport: RecordingTransport) -> None:
        super().__init__(run, transport)
        self.depends = {step.key: _depends(run, step) for step in run.flow.all_steps}
        self.errors: dict[tuple[str, int | None], Exception] = {}  # why a step failed

    def settle_early(self, step: Step, state: RowState) -> StepFinished | None:
        depends = self.depends[step.key]
        if depends and not (state.failed and step.section == "steps"):
            return self.result(step, state, OK, detail=Pending(depends))
        return super().settle_early(step, state)

    def send(self, step: Step, state: RowState) -> StepFinished:
        started = time.monotonic()
        run = self.run
        try:
            context = self.context(step, state)
            for key, item_context in run.loop_contexts(step, state.row_key, context):
                payload = run.render(step, item_context, state.row)
                request = run.build_request(step, payload, run.keys(key, step))
                CountingSend(self.transport)(request)
        except FlowInputError as exc:
            return self.failed(step, state, exc, time.monotonic() - started)
        return self.result(step, state, OK, time.monotonic() - started, detail="planned")

    def settle(
        self, step: Step, state: RowState, result: Any, elapsed: float, attempts: int, detail: Any
    ) -> StepFinished:
        return self.result(step, state, OK, elapsed, attempts, detail=detail)  # no answer yet

    def failed(
        self, step: Step, state: RowState, exc: Exception, elapsed: float = 0.0, attempts: int = 0
    ) -> StepFinished:
        self.errors[(step.key, state.number)] = exc
        return super().failed(step, state, exc, elapsed, attempts)


class _PlanSink:
    """Listens to the walk's events and turns them, with the recorded requests, into Planned
    items. A send is recorded before the outcome that follows it: a single request belongs to
    the next outcome's row; a batch to the next `len(batch)` outcomes' rows."""

    def __init__(self, transport: RecordingTransport, pipeline: PlanPipeline) -> None:
        self.transport = transport
        self.pipeline = pipeline
        self.items: list[Planned] = []
        self._batch: Request | None = None
        self._batch_step: Step | None = None
        self._batch_rows: list[int | None] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, RowFailed):
            self.items.append(PlannedFailure(None, event.row_number, event.failure))
        elif isinstance(event, StepFinished):
            self._outcome(event)

    def _outcome(self, outcome: StepFinished) -> None:
        for request in self.transport.take():
            if isinstance(request.body, EncodedBody):
                self._batch, self._batch_step, self._batch_rows = request, outcome.step, []
            else:
                body = None if request.body is None else encode_item(request.body)
                row = outcome.row_number
                self.items.append(PlannedRequest(outcome.step, row, row, request, 1, body))
        if self._batch is not None and outcome.step is self._batch_step:
            self._batch_rows.append(outcome.row_number)
            if len(self._batch_rows) == len(self._batch.body["batch"]):
                self._flush_batch()
        if isinstance(outcome.detail, Pending):
            row = outcome.row_number
            depends = outcome.detail.depends_on
            self.items.append(PlannedRequest(outcome.step, row, row, None, depends_on=depends))
        elif outcome.status in (FAILED, UNKNOWN):
            error = self.pipeline.errors.pop((outcome.step.key, outcome.row_number), None)
            assert outcome.failure is not None
            failure = PlannedFailure(outcome.step, outcome.row_number, outcome.failure, error)
            self.items.append(failure)
        elif outcome.status == SKIPPED:
            self.items.append(outcome)

    def _flush_batch(self) -> None:
        request, rows, step = self._batch, self._batch_rows, self._batch_step
        assert request is not None and step is not None
        body = request.body.encoded  # an EncodedBody: the bytes the run sends
        planned = PlannedRequest(step, rows[0], rows[-1], request, len(rows), body, batched=True)
        self.items.append(planned)
        self._batch, self._batch_step, self._batch_rows = None, None, []

    def take(self) -> list[Planned]:
        taken, self.items = self.items, []
        return taken


class Planner:
    """Plans a prepared run; iterate it for PlannedRequest per request, PlannedFailure per
    failing row, StepFinished per skipped (row, step); `rows` counts the rows planned."""

    def __init__(self, run: PreparedRun, *, batch: bool | None = None) -> None:
        run.check_rows_given()
        self.run = run
        self.transport = RecordingTransport()
        self.pipeline = PlanPipeline(run, self.transport)
        self.sink = _PlanSink(self.transport, self.pipeline)
        wanted = run.options.batch if batch is None else batch
        self.executor = Executor(
            run, self.transport, [self.sink], workers=1, batch=wanted, pipeline=self.pipeline
        )
        self.batch = self.executor.batch
        self.rows = 0  # rows planned so far

    def __iter__(self) -> Iterator[Planned]:
        processes = self.processes()
        if processes > 1:
            yield from self._in_processes(processes)
            return
        for work, unit in self._units():
            work(unit)
            yield from self.sink.take()

    def _units(self) -> Iterator[tuple[Callable[[Any], None], Any]]:
        for work, unit in self.executor.units():
            self.rows += len(unit) if isinstance(unit, list) else unit is not None
            yield work, unit

    def processes(self) -> int:
        """Worker processes for a batched plan of a big file: chunks are independent, so both
        cores render (set CIO_FLOWS_PLAN_PROCESSES to choose; 1 plans in this process)."""
        wanted = os.environ.get("CIO_FLOWS_PLAN_PROCESSES")
        if wanted is not None:
            return max(1, int(wanted)) if self.batch else 1
        big = self.run.data is not None and self.run.data.path.stat().st_size > PARALLEL_BYTES
        fork = "fork" in multiprocessing.get_all_start_methods()
        return min(2, os.cpu_count() or 1) if self.batch and big and fork else 1

    def _in_processes(self, processes: int) -> Iterator[Planned]:
        """Chunks planned by forked copies of this planner, answered in the run's order; at
        most two chunks per process in flight, so memory stays flat over any file."""
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            processes, mp_context=context, initializer=_adopt, initargs=(self,)
        ) as pool:
            pending: deque[Future[list[Planned]]] = deque()
            for _work, chunk in self._units():
                pending.append(pool.submit(_plan_chunk, chunk))
                if len(pending) >= 2 * processes:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()

    def first_failures(self, limit: int) -> list[PlannedFailure]:
        """The first `limit` failing rows of the whole plan (every row is rendered and checked)."""
        found: list[PlannedFailure] = []
        for item in self:
            if isinstance(item, PlannedFailure):
                found.append(item)
                if len(found) >= limit:
                    break
        return found


def preflight_static(run: PreparedRun) -> None:
    """Every check that needs no credentials: payload schemas (templates as wildcards) and, for
    one run without rows, a plan of it (every step that needs no earlier answer rendered and
    checked, as the run would); raises the first FlowInputError (exit 2 material)."""
    run.check_schemas()
    # A flow whose rows come from elsewhere (an HTTP source not read here, `serve`'s
    # deliveries) has none to render here.
    if run.data is None and run.flow.for_each is None:
        run.base_context(None)  # vars that do not render fail here, as in the run
        for failure in Planner(run).first_failures(1):
            if isinstance(failure.error, FlowInputError):
                raise failure.error
            raise PayloadError(failure.failure.message)


def preflight(run: PreparedRun) -> None:
    """Everything that can be checked before sending, credentials included: exit 2 material."""
    run.check_credentials()
    run.check_rows_given()
    preflight_static(run)


# A data file past this size is planned by two processes (below it, starting them costs more).
PARALLEL_BYTES = 1 << 20
_ADOPTED: list[Planner] = []  # in a worker process: the planner it was forked with


def _adopt(planner: Planner) -> None:
    _ADOPTED.append(planner)


def _plan_chunk(rows: Iterable[Any]) -> list[Planned]:
    planner = _ADOPTED[0]
    planner.executor.run_unit(list(rows))
    return planner.sink.take()


def _depends(run: PreparedRun, step: Step) -> tuple[str, ...]:
    """What a step needs from earlier answers: its payload's, its loop's and its `when`'s."""
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
