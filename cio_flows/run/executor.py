"""Run a prepared flow: rows on a bounded worker pool, steps in order within a row.

Each step: `when` -> (per `loop` item) render, validate, send, poll `wait_until` -> save ->
`expect`. A failed step skips the rest of the row's `steps`; `finally` steps always run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ..errors import FlowInputError, JournalError, TransportError
from ..flow.conditions import explain, holds
from ..flow.model import Step
from ..flow.templating import evaluate_condition
from ..wire.kinds import OPERATIONS, Request, Response
from ..wire.transport import Transport
from .batching import BatchedChunks
from .events import (
    FAILED,
    OK,
    SKIPPED,
    UNKNOWN,
    Listener,
    RowFinished,
    RunFinished,
    RunStarted,
    RunSummary,
    StepFinished,
)
from .prepare import PreparedRun
from .rows import Row


@dataclass(frozen=True)
class PreviousOutcome:
    """What a step did in an earlier attempt of the same run (from the journal, on resume)."""

    status: str
    result: Any = None


# row_key -> {step_key: PreviousOutcome}
PreviousLookup = Callable[[str], Mapping[str, PreviousOutcome]]
# (row_key, step_key): durably record that a send that is not safe to repeat is about to leave
InFlightMarker = Callable[[str, str], None]


@dataclass
class _RowState:
    row: Row | None
    row_key: str
    context: dict[str, Any]
    before: Mapping[str, PreviousOutcome]
    failed: bool = False

    @property
    def number(self) -> int | None:
        return self.row.number if self.row else None


class StepFailure(Exception):
    """A step that ran but did not succeed: an expectation, a wait that timed out."""


class Executor(BatchedChunks):
    def __init__(
        self,
        run: PreparedRun,
        transport: Transport,
        listeners: list[Listener] = (),
        *,
        workers: int = 8,
        previous: PreviousLookup | None = None,
        resend_unknown: bool = False,
        batch: bool = False,
        chunk_size: int = 500,
        sleep: Callable[[float], None] = time.sleep,
        in_flight: InFlightMarker | None = None,
    ) -> None:
        self.run = run
        self.in_flight = in_flight
        self.transport = transport
        self.listeners = list(listeners)
        self.workers = max(1, workers)
        self.previous = previous
        self.resend_unknown = resend_unknown
        # Batching pays off only over rows, and only when some step can go in a batch.
        self.batch = batch and run.data is not None and any(map(self.batchable, run.flow.all_steps))
        self.chunk_size = max(1, chunk_size)
        if self.batch:
            # Batched chunks are CPU-bound: threads beyond two per core only fight over the GIL
            # (measured: 8 threads on 2 cores burn 3x the CPU of 4 for the same rows).
            self.workers = min(self.workers, 2 * (os.cpu_count() or 1))
        self._sleep = sleep
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._journal_error: JournalError | None = None
        self.summary = RunSummary(run.run_id, run.flow.name)

    def emit(self, event) -> None:
        with self._lock:
            for listener in self.listeners:
                listener(event)

    def stop(self) -> None:
        """Finish the steps in flight, start no new ones (Ctrl-C); retries waiting stop now."""
        self._stop.set()
        self.transport.interrupt()

    # --- rows ------------------------------------------------------------------------------

    def execute(self) -> RunSummary:
        run = self.run
        targets = {f: run.endpoints.root(f) for f in ("pipelines", "track", "app")}
        self.emit(RunStarted(run.run_id, run.flow.name, str(run.flow.path), run.region, targets))
        started = time.monotonic()
        try:
            self._run_rows()
        except KeyboardInterrupt:
            self.stop()
            self.summary.interrupted = True
        except JournalError as exc:
            self._journal_failed(exc)
        except FlowInputError as exc:  # the data file breaks deep inside: stop, report
            self.summary.interrupted = True
            self._count(FAILED)
            self.emit(StepFinished(run.flow.steps[0], exc.row, None, FAILED, 0.0, error=str(exc)))
        summary = self.summary
        if self._journal_error is not None:  # raised in a worker thread
            self._journal_failed(self._journal_error)
        summary.elapsed = time.monotonic() - started
        stats = self.transport.stats
        summary.requests, summary.retries = stats["requests"], stats["retries"]
        summary.throttled = stats["throttled"]
        self.emit(RunFinished(summary))
        return summary

    def _units(self) -> Iterator[tuple[Callable[[Any], None], Any]]:
        """Work items: one row each, or chunks of rows whose batchable steps share batches."""
        if not self.batch:
            for row in self.run.rows():
                yield self._run_row, row
            return
        chunk: list[Row] = []
        for row in self.run.rows():
            chunk.append(row)
            if len(chunk) >= self.chunk_size:
                yield self._run_chunk, chunk
                chunk = []
        if chunk:
            yield self._run_chunk, chunk

    def _run_rows(self) -> None:
        if self.workers == 1:
            for work, unit in self._units():
                if self._stop.is_set():
                    break
                work(unit)
            return
        # Bounded in flight: rows stream from the file, memory stays flat.
        in_flight: set[Future] = set()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="cio-row") as pool:
            try:
                for work, unit in self._units():
                    if self._stop.is_set():
                        break
                    while len(in_flight) >= self.workers * 2:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        _raise_first(done)
                    in_flight.add(pool.submit(self._guarded, work, unit))
            except KeyboardInterrupt:
                self.stop()
                self.summary.interrupted = True
            _raise_first(self._wait_all(in_flight))

    def _wait_all(self, in_flight: set[Future]) -> set[Future]:
        """The rows in flight, once done. Ctrl-C here too stops them (a backoff ends at once):
        left to propagate, it would wait in the pool's shutdown for every retry."""
        while True:
            try:
                return wait(in_flight).done
            except KeyboardInterrupt:
                self.stop()
                self.summary.interrupted = True

    def _guarded(self, work: Callable[[Any], None], unit: Any) -> None:
        """Run a work item in a worker; a journal that cannot be written stops every worker."""
        try:
            work(unit)
        except JournalError as exc:
            self._journal_error = self._journal_error or exc
            self.stop()

    def _journal_failed(self, exc: JournalError) -> None:
        """Nothing more is sent: what cannot be recorded first would be sent blind on resume."""
        self.stop()
        self.summary.interrupted = True
        self.summary.journal_error = str(exc)

    def _count(self, status: str, row: int | None = None) -> None:
        with self._lock:
            self.summary.counts[status] += 1

    def _start_row(self, row: Row | None) -> _RowState | None:
        row_number = row.number if row else None
        with self._lock:
            self.summary.rows += 1
        try:
            context = self.run.base_context(row)
            row_key = self.run.row_key(row, context)
        except FlowInputError as exc:
            self._finish_row(row_number, None, failed=True)
            self._count(FAILED)
            self.emit(
                StepFinished(self.run.flow.steps[0], row_number, None, FAILED, 0.0, error=str(exc))
            )
            return None
        before = self.previous(row_key) if self.previous else {}
        return _RowState(row, row_key, context, before)

    def _record(self, state: _RowState, outcome: StepFinished) -> None:
        self._count(outcome.status)
        state.failed = state.failed or outcome.status in (FAILED, UNKNOWN)
        self.emit(outcome)

    def _run_row(self, row: Row | None) -> None:
        state = self._start_row(row)
        if state is None:
            return
        for step in self.run.flow.all_steps:
            if self._stop.is_set():
                return  # not recorded: a resume runs the rest
            self._record(state, self._step_for_row(step, state))
        self._finish_row(state.number, state.row_key, failed=state.failed)

    def _step_for_row(self, step: Step, state: _RowState) -> StepFinished:
        if state.failed and step.section == "steps":
            return StepFinished(step, state.number, state.row_key, SKIPPED, 0.0)
        replay = self._replay(step, state)
        if replay is not None:
            return replay
        return self._run_step(step, state)

    def _settle(
        self, step: Step, state: _RowState, result: Any, elapsed: float, attempts: int, detail: Any
    ) -> StepFinished:
        """Save and check expectations for a step whose request succeeded."""
        try:
            self._save(step, state.context, result)
            self._check_expectations(step, state.context, result, state.number)
        except FlowInputError as exc:
            error = exc.with_context(step=step.name, row=state.number).describe()
            return StepFinished(step, state.number, state.row_key, FAILED, elapsed, attempts, error)
        except StepFailure as exc:
            return StepFinished(
                step, state.number, state.row_key, FAILED, elapsed, attempts, str(exc)
            )
        saved = state.context["steps"].get(step.save) if step.save else None
        return StepFinished(
            step, state.number, state.row_key, OK, elapsed, attempts, detail=detail, saved=saved
        )

    def _finish_row(self, row_number, row_key, *, failed: bool) -> None:
        if failed:
            with self._lock:
                self.summary.failed_rows.append(row_number or 0)
        self.emit(RowFinished(row_number, row_key, FAILED if failed else OK))

    def _replay(self, step: Step, state: _RowState) -> StepFinished | None:
        """The outcome of a step settled in an earlier attempt of this run, if any."""
        previous = state.before.get(step.key)
        if previous is None:
            return None
        if previous.status == OK:
            if step.save:
                state.context["steps"][step.save] = previous.result
            return StepFinished(step, state.number, state.row_key, OK, 0.0, detail="done before")
        if previous.status == UNKNOWN and not self.resend_unknown:
            error = "outcome unknown in an earlier attempt: not resent (use --resend-unknown)"
            return StepFinished(step, state.number, state.row_key, UNKNOWN, 0.0, error=error)
        return None

    # --- one step --------------------------------------------------------------------------

    def _run_step(self, step: Step, state: _RowState) -> StepFinished:
        started = time.monotonic()
        sender = _CountingSend(self.transport, self._marker(state.row_key, step))

        def finished(status: str, error: str | None = None, detail: Any = None) -> StepFinished:
            elapsed = time.monotonic() - started
            return StepFinished(
                step, state.number, state.row_key, status, elapsed, sender.attempts, error, detail
            )

        try:
            if step.when is not None and not holds(step.when, state.context):
                return finished(SKIPPED, detail="when is false")
            result = self._perform(step, state.row, state.row_key, state.context, sender)
        except FlowInputError as exc:
            return finished(FAILED, exc.with_context(step=step.name, row=state.number).describe())
        except StepFailure as exc:
            return finished(FAILED, str(exc))
        except TransportError as exc:
            if exc.outcome == "unknown":
                return finished(UNKNOWN, f"{exc} (outcome unknown: not resent)")
            return finished(FAILED, str(exc))
        elapsed = time.monotonic() - started
        return self._settle(step, state, result, elapsed, sender.attempts, _summarize(step, result))

    def _marker(self, row_key: str, step: Step) -> Callable[[], None] | None:
        if self.in_flight is None:
            return None
        return lambda: self.in_flight(row_key, step.key)

    def _perform(self, step: Step, row, row_key, context, sender) -> Any:
        if step.loop is None:
            return self._send_and_wait(step, row, row_key, context, sender)
        return [
            self._send_and_wait(step, row, key, item_context, sender)
            for key, item_context in self.run.loop_contexts(step, row_key, context)
        ]

    def _send_and_wait(self, step: Step, row, row_key: str, context, sender) -> Any:
        payload = self.run.render(step, context, row)
        keys = self.run.keys(row_key, step)
        self.run.build_request(step, payload, keys)  # mapping errors before any send
        operation = OPERATIONS[step.kind]
        result = operation.execute(payload, keys, self.run.people_family, sender)
        wait_spec = step.wait_until
        if wait_spec is None:
            return result
        deadline = time.monotonic() + wait_spec.timeout
        pause = wait_spec.interval
        while not holds(wait_spec.condition, {**context, "response": result}):
            if time.monotonic() + pause > deadline:
                expected, found = explain(wait_spec.condition, {**context, "response": result})
                raise StepFailure(
                    f"{wait_spec.condition.location}: wait_until timed out after "
                    f"{wait_spec.timeout:g} s: {wait_spec.condition.expression} "
                    f"(expected {expected}, found {found})"
                )
            self._sleep(pause)
            pause = min(pause * 2, wait_spec.max_interval)
            result = operation.execute(payload, keys, self.run.people_family, sender)
        return result

    def _save(self, step: Step, context: dict[str, Any], result: Any) -> None:
        if not step.save:
            return
        value = result
        if step.save_value is not None:
            value = evaluate_condition(
                step.save_value, {**context, "response": result}, step.location
            )
        context["steps"][step.save] = value

    def _check_expectations(self, step: Step, context, result, row_number) -> None:
        scope = {**context, "response": result}
        for condition in step.expect:
            if not holds(condition, scope):
                expected, found = explain(condition, scope)
                raise StepFailure(
                    f"{condition.location}: expectation failed: {condition.expression} "
                    f"(expected {expected}, found {found})"
                )


class _CountingSend:
    def __init__(self, transport: Transport, before_send: Callable[[], None] | None = None) -> None:
        self._transport = transport
        self._before_send = before_send
        self.attempts = 0

    def __call__(self, request: Request) -> Response:
        if not request.repeatable and self._before_send is not None:
            self._before_send()  # committed first: a crash after this is UNKNOWN, never resent
        try:
            response = self._transport.send(request)
        except TransportError as exc:
            self.attempts += exc.attempts  # a failed request's attempts count too
            raise
        self.attempts += response.attempts
        return response


def _raise_first(done: set[Future]) -> None:
    for future in done:
        future.result()  # a bug in a worker must not pass silently


def _summarize(step: Step, result: Any) -> str | None:
    """A few words about a response for the console: counts and ids, never personal data."""
    if isinstance(result, list):
        return f"{len(result)} item(s)"
    if not isinstance(result, dict):
        return None
    if "count" in result:
        return f"{result['count']} found"
    if "delivery_id" in result:
        return f"delivery {result['delivery_id']}"
    if "segments" in result:
        return f"{len(result['segments'])} segment(s)"
    if step.kind == "get_person":
        return f"{len(result.get('attributes') or {})} attribute(s)"
    return None
