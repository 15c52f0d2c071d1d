"""Run a prepared flow: rows on a bounded worker pool, steps in order within a row.

Each step goes through the pipeline in steps.py (skip, replay, `when`, send, save, `expect`); a
failed step skips the rest of the row's `steps`, `finally` steps always run. With batching, the
rows of a chunk take each step together and batchable steps share batch calls (batching.py).
Events go out through one Dispatcher: a listener that raises cannot stop the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from ..errors import FlowInputError, JournalError, StepFailure, TransportError
from ..flow.model import Step
from ..wire.kinds import FAMILIES
from ..wire.protocol import Transport
from .batching import CHUNK_ROWS, BatchedStep, CpuTurns, Outcome, batchable
from .dispatch import Dispatcher
from .events import (
    FAILED,
    OK,
    UNKNOWN,
    Event,
    Listener,
    RowFailed,
    RowFinished,
    RunError,
    RunFinished,
    RunStarted,
    RunSummary,
    StepFinished,
    stopped_before_sending,
)
from .once import OnceBook
from .prepare import PreparedRun
from .rows import Row
from .steps import (
    InFlightMarker,
    PreviousLookup,
    PreviousOutcome,
    RowState,
    StepPipeline,
    failure_of,
    row_failure,
)


class Executor:
    def __init__(
        self,
        run: PreparedRun,
        transport: Transport,
        listeners: Sequence[Listener] = (),
        *,
        workers: int = 8,
        previous: PreviousLookup | None = None,
        resend_unknown: bool = False,
        batch: bool = False,
        chunk_size: int = CHUNK_ROWS,
        sleep: Callable[[float], None] = time.sleep,
        in_flight: InFlightMarker | None = None,
        once: OnceBook | None = None,
        pipeline: StepPipeline | None = None,
        claim: Callable[[], int] | None = None,
    ) -> None:
        self.run = run
        # A worker process's chunks (processes.py): each call the number of the next chunk
        # this process runs, larger each time, counted over every process; None: all of them.
        self.claim = claim
        self.transport = transport
        self.workers = max(1, workers)
        self.previous = previous
        # A plan passes its own pipeline (run/plan.py): same walk, requests recorded, not sent.
        self.pipeline = pipeline or StepPipeline(
            run,
            transport,
            resend_unknown=resend_unknown,
            in_flight=None if in_flight is None else self._unless_stopping(in_flight),
            sleep=sleep,
            once=once,
        )
        # Batching pays off only over rows, and only when some step can go in a batch.
        self.batch = batch and run.data is not None and any(map(batchable, run.flow.all_steps))
        self.chunk_size = max(1, chunk_size)
        # Work items read ahead of the threads: rows, cheap, two per thread; chunks of
        # batched rows, a few MB each, one per thread (memory stays flat at any size).
        self._bound = self.workers if self.batch else self.workers * 2
        # One chunk at a time does Python work; the others wait on the network meanwhile. More
        # threads then add chunks in flight, not GIL contention (measured at 50,000 rows: 4.9 s
        # on 4 threads without turns, 3.3-3.6 s on 8 with one turn).
        self.turns = CpuTurns(1)
        self.batched = BatchedStep(self.pipeline, self.turns)
        self.dispatcher = Dispatcher(
            listeners, on_stop=self._listener_stopped, redact=run.redactor()
        )
        self._lock = threading.Lock()
        self._thread = threading.local()  # whether the step this thread runs marked a send
        self._stop = threading.Event()
        self._signals = 0  # Ctrl-C / SIGTERM received
        self._journal_error: JournalError | None = None
        self.summary = RunSummary(run.run_id, run.flow.name)

    def _unless_stopping(self, mark: InFlightMarker) -> InFlightMarker:
        """The in-flight mark, refused once the run is stopping (Ctrl-C): the send would be
        refused right after it anyway, so no mark (and no fsync) is written for nothing."""

        def marked(row_key: str, step_key: str, facts: dict[str, Any] | None) -> None:
            if self._stop.is_set():
                raise TransportError("stopped before sending (interrupted)", attempts=0)
            mark(row_key, step_key, facts)
            self._thread.marked = True  # see _step_outcome

        return marked

    @property
    def listeners(self) -> list[Listener]:
        return self.dispatcher.listeners

    def emit(self, event: Event) -> None:
        self.dispatcher(event)

    def stop(self) -> None:
        """Finish the steps in flight, start no new ones (Ctrl-C); retries waiting stop now."""
        self._stop.set()
        self.transport.interrupt()

    # --- the run ----------------------------------------------------------------------------

    def execute(self) -> RunSummary:
        started = time.monotonic()
        try:
            # Inside the guard: a Ctrl-C as the run starts stops it as one later does (a worker
            # process's comes here when it had one before: processes.py).
            self.emit(run_started(self.run))
            self._run_rows()
        except KeyboardInterrupt:
            self._interrupted()
        except JournalError as exc:
            self._journal_failed(exc)
        except FlowInputError as exc:  # the data file breaks deep inside: stop, report
            self.summary.interrupted = True
            self._count(FAILED)
            self.emit(RunError(failure_of(exc)))
        except BaseException:  # a bug: the listeners (the journal) still hear that it ended
            self.summary.interrupted = True
            self._finish(started)
            raise
        return self._finish(started)

    def _finish(self, started: float) -> RunSummary:
        summary = self.summary
        if self._journal_error is not None:  # raised in a worker thread or by a listener
            self._journal_failed(self._journal_error)
        summary.elapsed = time.monotonic() - started
        stats = self.transport.stats
        summary.requests, summary.retries = stats["requests"], stats["retries"]
        summary.throttled = stats["throttled"]
        self.emit(RunFinished(summary))
        return summary

    def units(self) -> Iterator[tuple[Callable[[Any], None], Any]]:
        """Work items (work, unit): one row each, or chunks of rows whose batchable steps share
        batches; `work(unit)` runs one. A plan walks the same units (run/plan.py)."""
        if not self.batch:
            for row in self.run.rows():
                yield self._run_row, row
            return
        if self.claim is None:
            for chunk in chunked(self.run.rows(), self.chunk_size):
                yield self._run_chunk, chunk
            return
        # Claimed one ahead of a free thread: a process that runs ahead takes more chunks, and
        # the processes end together. The chunks in between are other processes' (read past).
        claimed = self._claimed_by_number if self.run.every_row else self._claimed_by_position
        for chunk in claimed(self.claim):
            yield self._run_chunk, chunk

    def _claimed_by_position(self, claim: Callable[[], int]) -> Iterator[list[Row | None]]:
        wanted = claim()
        for number, chunk in enumerate(chunked(self.run.rows(), self.chunk_size)):
            if number == wanted:
                yield chunk
                wanted = claim()

    def _claimed_by_number(self, claim: Callable[[], int]) -> Iterator[list[Row | None]]:
        """Chunk k is rows k*size+1 .. (k+1)*size: the others' rows are not even built. The
        file is read lazily, so each row is judged by the latest claim."""
        size, wanted = self.chunk_size, [claim()]
        chunk: list[Row | None] = []
        for row in self.run.rows(skip=lambda number: (number - 1) // size != wanted[0]):
            chunk.append(row)
            if row is not None and row.number == (wanted[0] + 1) * size:
                yield chunk
                chunk, wanted[0] = [], claim()
        if chunk:
            yield chunk

    def run_unit(self, unit: Any) -> None:
        """One work item of `units()` (a row, or a chunk of rows when batching), in this thread."""
        if self.batch:
            self._run_chunk(unit)
        else:
            self._run_row(unit)

    def _run_rows(self) -> None:
        # Even one worker is a pool thread: this thread only waits, so a Ctrl-C lets the step in
        # flight finish and be recorded instead of breaking into its request.
        # Bounded in flight: rows stream from the file, memory stays flat.
        in_flight: set[Future[None]] = set()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cio-row")
        try:
            try:
                for work, unit in self.units():
                    if self._stop.is_set():
                        break
                    while len(in_flight) >= self._bound:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        _raise_first(done)
                    in_flight.add(pool.submit(self._guarded, work, unit))
            except KeyboardInterrupt:
                self._interrupted()
            except FlowInputError:  # the data breaks under the run: the rows read before finish
                _raise_first(self._wait_all(in_flight))
                raise
            _raise_first(self._wait_all(in_flight))
        finally:
            # After a second signal the rows in flight are left to the process's exit.
            pool.shutdown(wait=not self.summary.abandoned, cancel_futures=True)

    def _interrupted(self) -> None:
        """Ctrl-C or SIGTERM: the first stops new work and waits for the rows in flight (each
        answer within --timeout); a second stops waiting for them (summary.abandoned)."""
        if self._signals:
            self.summary.abandoned = True
        self._signals += 1
        self.stop()
        self.summary.interrupted = True

    def _wait_all(self, in_flight: set[Future[None]]) -> set[Future[None]]:
        """The rows in flight, once done. Ctrl-C here too stops them (a backoff ends at once):
        left to propagate, it would wait in the pool's shutdown for every retry."""
        while True:
            try:
                return wait(in_flight).done
            except KeyboardInterrupt:
                self._interrupted()
                if self.summary.abandoned:
                    return {future for future in in_flight if future.done()}

    def _guarded(self, work: Callable[[Any], None], unit: Any) -> None:
        """Run a work item in a worker; a journal that cannot be written stops every worker."""
        try:
            work(unit)
        except JournalError as exc:
            self._listener_stopped(exc)

    def _listener_stopped(self, exc: JournalError) -> None:
        """The journal failed (a listener, or an in-flight mark): stop sending at once."""
        with self._lock:
            self._journal_error = self._journal_error or exc
        self.stop()

    def _journal_failed(self, exc: JournalError) -> None:
        """Nothing more is sent: what cannot be recorded first would be sent blind on resume."""
        self.stop()
        self.summary.interrupted = True
        self.summary.journal_error = str(exc)

    def _count(self, status: str) -> None:
        with self._lock:
            self.summary.counts[status] += 1

    # --- rows -------------------------------------------------------------------------------

    def _start_row(self, row: Row | None) -> RowState | None:
        """The row's state, or None (reported as RowFailed) when its vars or key do not render."""
        row_number = row.number if row else None
        with self._lock:
            self.summary.rows += 1
        try:
            context = self.run.base_context(row)
            row_key = self.run.row_key(row, context)
        except FlowInputError as exc:
            self._count(FAILED)
            self.emit(RowFailed(row_number, row_failure(exc, row_number)))
            self._finish_row(row_number, None, failed=True)
            return None
        before = self.previous(row_key) if self.previous else {}
        return RowState(row, row_key, context, before)

    def _record(self, state: RowState, outcome: StepFinished) -> None:
        self._record_many([(state, outcome)])

    def _record_many(self, outcomes: Sequence[tuple[RowState, StepFinished]]) -> None:
        """Outcomes that come together (a batch's), counted under one lock, heard at once."""
        if not outcomes:
            return
        summary = self.summary
        with self._lock:
            for state, outcome in outcomes:
                summary.counts[outcome.status] += 1
                if outcome.status in (FAILED, UNKNOWN):
                    state.failed = True
                    summary.note(outcome)  # a refused key or no answer: exit 3 or 4
        if len(outcomes) == 1:
            self.emit(outcomes[0][1])
        else:
            self.dispatcher.many([outcome for _, outcome in outcomes])

    def _finish_row(self, row_number: int | None, row_key: str | None, *, failed: bool) -> None:
        if failed:
            with self._lock:
                self.summary.failed_rows.append(row_number or 0)
        self.emit(RowFinished(row_number, row_key, FAILED if failed else OK))

    def _finish_rows(self, states: Sequence[RowState]) -> None:
        """The rows of a chunk done, heard at once."""
        failed = [state.number or 0 for state in states if state.failed]
        if failed:
            with self._lock:
                self.summary.failed_rows += failed
        self.dispatcher.many(
            [RowFinished(s.number, s.row_key, FAILED if s.failed else OK) for s in states]
        )

    def _run_row(self, row: Row | None) -> None:
        state = self._start_row(row)
        if state is None:
            return
        for step in self.run.flow.all_steps:
            if self._stop.is_set():
                return  # not recorded: a resume runs the rest
            outcome = self._step_outcome(step, state)
            if outcome is None:
                return  # the same, stopped between the check above and its send
            self._record(state, outcome)
        self._finish_row(state.number, state.row_key, failed=state.failed)

    def _step_outcome(self, step: Step, state: RowState) -> StepFinished | None:
        """The step run for the row; None when the run stopped before its first request and
        no in-flight mark was committed for it: it did nothing, is not recorded, and a resume
        runs it. A committed mark must be answered by an outcome, or a resume would take a
        send that never left for one whose outcome is unknown."""
        self._thread.marked = False
        outcome = self.pipeline.run_step(step, state)
        if self._stop.is_set() and stopped_before_sending(outcome) and not self._thread.marked:
            return None
        return outcome

    def _run_chunk(self, rows: list[Row | None]) -> None:
        with self.turns:
            self._run_chunk_steps(rows)

    def _run_chunk_steps(self, rows: list[Row | None]) -> None:
        """Step N for every row of the chunk, then step N+1; batchable steps share batches."""
        states = [s for s in map(self._start_row, rows) if s is not None]
        for step in self.run.flow.all_steps:
            if self._stop.is_set():
                return
            if batchable(step):
                outcomes = self.batched.run(step, states, self._stop.is_set)
            else:  # row by row, each send waiting on its own: no turn held meanwhile
                outcomes = self._unbatched(step, states)
            # Outcomes come lazily, a batch's together, and once stopping (Ctrl-C, a failed
            # journal) none comes from a new send: what was sent is recorded (a batch's every
            # row), the rest a resume runs.
            for group in outcomes:
                self._record_many(group)
            if self._stop.is_set():
                return
        self._finish_rows(states)

    def _unbatched(self, step: Step, states: list[RowState]) -> Iterator[list[Outcome]]:
        for state in states:
            if self._stop.is_set():
                return
            with self.turns.released():
                outcome = self._step_outcome(step, state)
            if outcome is None:
                return
            yield [(state, outcome)]


def run_started(run: PreparedRun) -> RunStarted:
    """What a run announces before its first row."""
    return RunStarted(
        run.run_id,
        run.flow.name,
        str(run.flow.path),
        run.region,
        {family: run.endpoints.root(family) for family in FAMILIES},
        run.row_count,
        notes=(*run.dropped_rows.values(), *run.notes),
    )


def chunked(rows: Iterable[Row | None], size: int) -> Iterator[list[Row | None]]:
    """Rows in lists of `size` (a run without data is one row: None)."""
    chunk: list[Row | None] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _raise_first(done: set[Future[None]]) -> None:
    for future in done:
        future.result()  # a bug in a worker must not pass silently


__all__ = ["Executor", "InFlightMarker", "PreviousLookup", "PreviousOutcome", "StepFailure"]
