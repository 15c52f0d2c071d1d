"""A batched run over several processes (`run --processes N`): forked worker processes, each
rendering, validating and sending its share of the chunks, while this process keeps the run's
listeners (console, progress bar, reports, the caller's) and the journal's record of the run.

Why: a batched run is Python work (templates, validation, ids, JSON) done one core at a time
under the GIL. Why fork: a worker starts from the prepared run (templates and schemas compiled,
the data checked) at no cost.

What holds as in one process:
- Rows: each chunk goes to one worker, the first with a thread free for it (ChunkCounter), so
  the workers end together and a row's steps stay in order in one process, and a
  send's messageId depends on the run id, row key and step only (keys.py), whichever process
  sends it, before or after a resume.
- The journal: each worker records its rows' outcomes and in-flight marks through a connection
  of its own (SQLite in WAL mode takes one writer at a time); this process records the run's
  start, progress and end, and holds the run lock, which the workers inherit: no other process
  resumes the run before the last worker is gone.
- Rate limits: each worker paces every API family at 1/N of its rate.
- Events: a worker forwards every event but RunStarted/RunFinished; this process hands them to
  the listeners in the order each worker emitted them, then one RunFinished with the workers'
  summaries merged.
- Signals: workers ignore SIGINT and SIGTERM (a terminal, `kill -- -PGID` or systemd's stop
  send them to the whole process group: a worker would count each twice) and take SIGUSR1 as
  Ctrl-C; this process forwards each Ctrl-C or SIGTERM it gets as one SIGUSR1, so a first
  signal lets the steps in flight finish everywhere and a second stops waiting for them.
  A worker whose parent is killed (SIGKILL) is killed with it (PR_SET_PDEATHSIG), as its
  threads would be in one process: what it had in flight is in the journal, and a resume settles
  it; no worker goes on sending for a run nobody watches, or holds its lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from multiprocessing.connection import Connection, wait
from typing import Any

from ..wire.ratelimit import RateLimits
from ..wire.transport import Transport
from .batching import batchable
from .dispatch import BulkListener, Dispatcher
from .events import (
    FAILED,
    INPUT,
    Event,
    Failure,
    Listener,
    RowFinished,
    RunError,
    RunFinished,
    RunStarted,
    RunSummary,
    Status,
    StepFinished,
)
from .executor import Executor, run_started
from .prepare import PreparedRun
from .session import RunSession

AUTO_ROWS = 5_000  # fewer data rows: one process (a fork costs more than it saves)
MAX_AUTO = 8  # processes chosen without --processes, at most
FORWARD_EVENTS = 512  # events a worker sends in one message...
FORWARD_SECONDS = 0.2  # ...or fewer, when this long has passed (the progress bar moves)
# A Ctrl-C or SIGTERM of the run, as its workers get it: no one else sends them this one.
FORWARDED = signal.SIGUSR1
STOP_SECONDS = 10  # a run that broke in this process: how long its workers get to stop
_STEP_FIELDS = tuple(f.name for f in fields(StepFinished))
assert _STEP_FIELDS[:4] == ("step", "row_number", "row_key", "status")  # see _restored
_STATUS_FIELD = _STEP_FIELDS.index("status")
_HASH_FIELD = _STEP_FIELDS.index("request_hash")
_STEP_WIDTH = len(_STEP_FIELDS)
assert _STEP_WIDTH not in (1, 3)  # told apart from the other records by length
_STATUSES = {str(status): status for status in Status}  # forwarded as text: no Enum call


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def process_count(run: PreparedRun, requested: int | None, *, emulated: bool) -> int:
    """How many processes run `run`: `requested`, or (None) one per core for a batched run of
    at least AUTO_ROWS data rows against Customer.io (an emulator in this process serves every
    request on this process's core: it would only wait more), in a process with no threads but
    the run's. One when the run cannot be split, with the reason added to the run's notes when
    more were asked for. Never more than --workers, the chunks in flight over the whole run: a
    process has one at least (`--workers 1` sends one chunk at a time, rows in order)."""
    if requested == 1:
        return 1
    reason = unsplittable(run)
    if reason is not None:
        if requested is not None:
            run.notes.append(f"--processes {requested}: {reason}: the run uses one process")
        return 1
    workers = max(1, run.options.workers)
    if requested is not None:
        if requested > workers:
            run.notes.append(
                f"--processes {requested}: --workers {workers} allows {workers} chunk(s) in"
                f" flight, each process one at least: the run uses {workers} process(es)"
            )
            return workers
        return requested
    rows = run.row_count or 0
    if emulated or rows < AUTO_ROWS or _other_threads():
        return 1
    return max(1, min(available_cores(), MAX_AUTO, workers))


def _other_threads() -> bool:
    """Whether threads other than the run's own live in this process (a notebook kernel's, a
    server's): a fork copies their locks as they are, so a worker is forked only when asked."""
    ours = ("cio-journal", "cio-row")
    return any(
        thread is not threading.main_thread() and not thread.name.startswith(ours)
        for thread in threading.enumerate()
    )


def unsplittable(run: PreparedRun) -> str | None:
    """Why `run` cannot go to worker processes, or None."""
    options, settings = run.options, run.options.transport
    if not sys.platform.startswith("linux"):
        return "worker processes are forked, on Linux only"
    if threading.current_thread() is not threading.main_thread():
        return "not called from the main thread, which signals reach"
    if not (options.batch and run.data is not None and any(map(batchable, run.flow.all_steps))):
        return "it is not batched (no data rows, --no-batch, or no step that batches)"
    if any(step.once is not None for step in run.flow.all_steps):
        return "a step has `once`, whose keys are claimed in one process"
    if (
        settings.on_exchange is not None
        or settings.session_factory is not None
        or options.template_helpers is not None
    ):
        return "its requests are traced, recorded or replayed in this process"
    if settings.rate_limits.limiters is not None:
        return "its rate limits are shared with other runs in this process"
    return None


def rate_share(limits: RateLimits, processes: int) -> RateLimits:
    """Each worker's pacing: 1/N of every family's rate (limiters of its own)."""
    return RateLimits({bucket: rate / processes for bucket, rate in limits.rates.items()})


class ChunkCounter:
    """The number of the next chunk, claimed by whichever worker process has a thread free: a
    counter in a file, under flock, which the kernel releases when its holder dies (a worker
    killed mid-claim leaves no lock behind, as a semaphore would)."""

    def __init__(self) -> None:
        handle, self.path = tempfile.mkstemp(prefix="cio-flows-chunks-")
        os.close(handle)
        self._fd: int | None = None  # opened in each process: flock is per open file

    def claim(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            number = int.from_bytes(os.pread(self._fd, 8, 0) or b"\0", "little")
            os.pwrite(self._fd, (number + 1).to_bytes(8, "little"), 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return number

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


@dataclass
class _Worker:
    index: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    summary: RunSummary | None = None
    crash: str | None = None  # what the worker said when it broke


@dataclass
class ProcessRun:
    """Run `run` in `count` worker processes; `execute()` returns the merged summary."""

    run: PreparedRun
    count: int
    session: RunSession
    listeners: Sequence[Listener]
    resend_unknown: bool = False
    settled: list[dict[str, str]] = field(default_factory=list)
    parent: int = field(default_factory=os.getpid)
    chunks: ChunkCounter | None = None  # made as the workers start
    _signals: int = 0
    _receiving: bool = True  # until every worker is done: signals are forwarded, and counted

    def execute(self) -> RunSummary:
        started = time.monotonic()
        dispatcher = Dispatcher(self.listeners, redact=self.run.redactor())
        workers: list[_Worker] = []
        # Forwarding from before the first fork: a signal during start-up reaches this process
        # through any of its threads (the journal's), and must not raise here mid-fork.
        with self._signals_forwarded(workers):
            chunks = self.chunks = ChunkCounter()
            try:
                self._start_workers(workers)
                dispatcher(run_started(self.run))
                threshold = gc.get_threshold()
                gc.set_threshold(50_000, 20, 20)  # events are short-lived and hold no cycles
                try:
                    self._receive(workers, dispatcher)
                finally:
                    gc.set_threshold(*threshold)
            except BaseException:
                _stop(workers)  # none outlives a run that broke here (a notebook lives on)
                raise
            finally:
                self._receiving = False
                for worker in workers:
                    worker.process.join()
                chunks.remove()
            summary = self._merged(workers, dispatcher)
            summary.elapsed = time.monotonic() - started
            dispatcher(RunFinished(summary))
        return summary

    # --- this process --------------------------------------------------------------------

    def _start_workers(self, workers: list[_Worker]) -> None:
        """Fork the workers into `workers`, each told of the signals this process got so far."""
        context = multiprocessing.get_context("fork")
        # Signals wait until each worker has its own handlers; the collector leaves the
        # prepared run's pages alone, so the workers share them instead of copying them.
        blocked = signal.pthread_sigmask(
            signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, FORWARDED}
        )
        gc.collect()
        gc.freeze()
        try:
            with self.session.quiet():  # no SQLite call in flight in another thread
                for index in range(self.count):
                    receive, send = context.Pipe(duplex=False)
                    process = context.Process(
                        target=_worker_main,
                        args=(send, self, index, blocked),
                        name=f"cio-flows worker {index + 1}/{self.count}",
                    )
                    process.start()
                    send.close()
                    workers.append(_Worker(index, process, receive))
                    if self._signals:  # Ctrl-C before it was forked: it stops at its start
                        _terminate(process)
        finally:
            gc.unfreeze()
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    @contextlib.contextmanager
    def _signals_forwarded(self, workers: list[_Worker]) -> Iterator[None]:
        """Ctrl-C and SIGTERM go to the workers, each as one SIGUSR1; none raises here."""

        def forward(signum: int, frame: object) -> None:
            if not self._receiving:  # the workers are done: nothing left to interrupt
                return
            self._signals += 1
            for worker in workers:
                _terminate(worker.process)

        # A signal this process ignores (SIGINT in a background job, under nohup) stays ignored.
        heard = [
            s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) != signal.SIG_IGN
        ]
        previous = {s: signal.signal(s, forward) for s in heard}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _receive(self, workers: list[_Worker], dispatcher: Dispatcher) -> None:
        """Every worker's events, handed to the listeners, until each has said it is done."""
        steps = self.run.flow.all_steps
        open_ = {worker.conn.fileno(): worker for worker in workers}
        while open_:
            for ready in wait([worker.conn for worker in open_.values()]):
                worker = next(w for w in open_.values() if w.conn is ready)
                try:
                    kind, body = worker.conn.recv()
                except (EOFError, OSError):  # gone: done, or killed
                    del open_[worker.conn.fileno()]
                    continue
                if kind == "events":
                    dispatcher.many([_restored(item, steps) for item in body])
                elif kind == "done":
                    worker.summary = body
                else:
                    worker.crash = body

    def _merged(self, workers: list[_Worker], emit: Callable[[Event], None]) -> RunSummary:
        summary = RunSummary(self.run.run_id, self.run.flow.name, processes=self.count)
        summary.settled = list(self.settled)
        for worker in workers:
            part = worker.summary
            if part is None:
                self._lost(worker, summary, emit)
                continue
            for status, count in part.counts.items():
                summary.counts[status] = summary.counts.get(status, 0) + count
            summary.rows += part.rows
            summary.failed_rows += part.failed_rows
            summary.requests += part.requests
            summary.retries += part.retries
            summary.throttled += part.throttled
            summary.interrupted = summary.interrupted or part.interrupted
            summary.abandoned = summary.abandoned or part.abandoned
            summary.journal_error = summary.journal_error or part.journal_error
            summary.refused = summary.refused or part.refused
            summary.unavailable = summary.unavailable or part.unavailable
        summary.failed_rows.sort()
        summary.interrupted = summary.interrupted or self._signals > 0
        return summary

    def _lost(self, worker: _Worker, summary: RunSummary, emit: Callable[[Event], None]) -> None:
        """A worker that ended without its summary (killed, or a bug): the run is interrupted;
        what it did not record, a resume runs."""
        code = worker.process.exitcode
        how = worker.crash or (
            f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        )
        message = (
            f"worker process {worker.index + 1} of {self.count} stopped before its rows were"
            f" done ({how}): run again what it did not finish with --resume {self.run.run_id}"
        )
        summary.interrupted = True
        summary.counts[FAILED] += 1
        emit(RunError(Failure(INPUT, message)))

    # --- a worker process ------------------------------------------------------------------

    def work(self, forward: _Forwarder, index: int, signals: _WorkerSignals) -> RunSummary:
        """The run of worker `index`: its chunks, its own journal connection and transport."""
        run = self.run
        journal = self.session.for_worker()
        listeners: list[Listener] = [forward, signals]
        if journal is not None:
            listeners.insert(0, journal.listener)
        settings = replace(
            run.options.transport,
            rate_limits=rate_share(run.options.transport.rate_limits, self.count),
        )
        try:
            with Transport(run.endpoints, run.credentials, settings) as transport:
                executor = Executor(
                    run,
                    transport,
                    listeners,
                    # --workers chunks in flight over the whole run, as in one process
                    workers=-(-run.options.workers // self.count),
                    batch=True,
                    previous=None if journal is None else journal.previous,
                    resend_unknown=self.resend_unknown,
                    in_flight=None if journal is None else journal.in_flight,
                    claim=None if self.chunks is None else self.chunks.claim,
                )
                try:
                    summary = executor.execute()
                except KeyboardInterrupt:  # a signal after its rows, before RunFinished
                    signals.disarm()
                    summary = executor.summary
        finally:
            if journal is not None:
                journal.journal.close()
        failure = None if journal is None else journal.journal.failure
        if failure is not None and summary.journal_error is None:
            summary.journal_error = str(failure)
        return summary


def _worker_main(conn: Connection, job: ProcessRun, index: int, blocked: set[int]) -> None:
    """A worker process, from fork to exit: never returns (os._exit skips the parent's
    cleanups, which belong to the parent)."""
    code = 0
    forward = _Forwarder(conn, job.run.flow.all_steps)
    try:
        signals = _WorkerSignals()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's, forwarded, are enough
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(FORWARDED, signals.received)
        _end_with_parent(job.parent)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        # What the parent had is frozen (gc.freeze before the fork); what a worker allocates is
        # short-lived rows and payloads, hardly ever cycles: collecting every 700 allocations
        # cost ~2 us an event.
        gc.set_threshold(50_000, 20, 20)
        summary = job.work(forward, index, signals)
        forward.send("done", summary)
    except BaseException as exc:  # a bug: the parent reports it and the run is resumable
        code = 1
        text = job.run.redactor()(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):
            forward.flush()  # the outcomes it recorded, heard as in one process
            forward.send("crashed", text)
    finally:
        with contextlib.suppress(Exception):
            conn.close()
        os._exit(code)


class _WorkerSignals(BulkListener):
    """A worker's SIGUSR1 (the parent's Ctrl-C): raised as KeyboardInterrupt only while its
    executor runs the rows, which it stops as in one process. One that comes before (while
    the worker opens its journal and transport) is kept, and stops the run as it starts;
    one after, while the worker hands in its summary, is only counted."""

    def __init__(self) -> None:
        self.count = 0
        self._armed = False

    def received(self, signum: int, frame: object) -> None:
        self.count += 1
        if self._armed:
            raise KeyboardInterrupt

    def __call__(self, event: Event) -> None:
        """Last of the worker's listeners: RunStarted comes inside the executor's guard."""
        if isinstance(event, RunStarted):
            self._armed = True
            if self.count:
                raise KeyboardInterrupt
        elif isinstance(event, RunFinished):
            self.disarm()

    def many(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, RunStarted | RunFinished):
                self(event)

    def disarm(self) -> None:
        self._armed = False


def _terminate(process: multiprocessing.process.BaseProcess) -> None:
    """A worker still running gets its Ctrl-C."""
    if process.pid is not None and process.exitcode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, FORWARDED)


def _stop(workers: Sequence[_Worker]) -> None:
    """Stop and reap the workers of a run that broke in this process: not read any more (a
    worker writing its events gets EPIPE), told to stop, killed when they do not in time."""
    for worker in workers:
        worker.conn.close()
        _terminate(worker.process)
    for worker in workers:
        worker.process.join(STOP_SECONDS)
        if worker.process.exitcode is None:
            worker.process.kill()
            worker.process.join()


def _end_with_parent(parent: int) -> None:
    """Killed when the parent dies (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


class _Forwarder(BulkListener):
    """A worker's listener: its events, in batches, to the parent process."""

    def __init__(self, conn: Connection, steps: Sequence[Any]) -> None:
        self._conn = conn
        self._index = {id(step): number for number, step in enumerate(steps)}
        self._batch: list[tuple[Any, ...]] = []
        self._sent = time.monotonic()
        # One message on the pipe at a time: after a second Ctrl-C, rows left running still
        # send theirs while the worker hands in its summary.
        self._lock = threading.RLock()

    def many(self, events: Sequence[Event]) -> None:
        records = [record for record in map(self._record, events) if record is not None]
        with self._lock:
            self._batch += records
            if (
                len(self._batch) >= FORWARD_EVENTS
                or time.monotonic() - self._sent > FORWARD_SECONDS
            ):
                self.flush()

    def _record(self, event: Event) -> tuple[Any, ...] | None:
        """What is sent of an event (see _restored); None for what the parent says itself."""
        if isinstance(event, StepFinished) and id(event.step) in self._index:
            values = list(vars(event).values())  # the fields, in order (a dataclass's __dict__)
            values[0] = self._index[id(values[0])]
            values[_STATUS_FIELD] = str(values[_STATUS_FIELD])
            # the hash is the journal's, which the worker keeps: the parent's listeners get None
            values[_HASH_FIELD] = None
            return tuple(values)
        if isinstance(event, RowFinished):
            return (event.row_number, event.row_key, str(event.status))
        if isinstance(event, RunStarted | RunFinished):
            return None  # the parent announces the run, and ends it with every summary
        return (event,)

    def flush(self) -> None:
        with self._lock:
            if self._batch:
                self._conn.send(("events", self._batch))
                self._batch = []
            self._sent = time.monotonic()

    def send(self, kind: str, body: object) -> None:
        """The worker's last word ("done" with its summary, or "crashed"), after its events."""
        with self._lock:
            self.flush()
            self._conn.send((kind, body))


def _restored(item: tuple[Any, ...], steps: Sequence[Any]) -> Event:
    """An event from its forwarded record, told apart by length: a StepFinished's fields,
    a RowFinished's, or any other event whole (pickled)."""
    if len(item) == _STEP_WIDTH:
        # StepFinished's __init__ takes its fields in order (a test keeps it so)
        step, row_number, row_key, status, *rest = item
        return StepFinished(steps[step], row_number, row_key, _STATUSES[status], *rest)
    if len(item) == 3:
        return RowFinished(item[0], item[1], _STATUSES[item[2]])
    event: Event = item[0]
    return event


__all__ = [
    "AUTO_ROWS",
    "ProcessRun",
    "available_cores",
    "process_count",
    "rate_share",
    "unsplittable",
]
