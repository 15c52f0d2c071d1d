"""A live progress bar (rows done of the total, rows/s, ETA, failures) when stdout is a terminal.

Elsewhere (CI logs, pipes, notebooks) no bar: given a `status` writer, one plain status line at
most every `status_every` seconds, so a long sync shows it is alive without flooding the log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from ..run.events import FAILED, Event, RowFinished, RunError, RunFinished, RunStarted


def true_rate(done: int, elapsed: float | None) -> float | None:
    """Rows per second over the whole run so far (rich's windowed speed overshoots on bursts)."""
    if not elapsed or elapsed <= 0 or done == 0:
        return None
    return done / elapsed


def eta_seconds(done: int, total: int | None, elapsed: float | None) -> float | None:
    rate = true_rate(done, elapsed)
    if rate is None or total is None:
        return None
    return max(total - done, 0) / rate


def clock_text(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        rate = true_rate(int(task.completed), task.elapsed)
        return Text("- rows/s" if rate is None else f"{rate:,.0f} rows/s")


class EtaColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = None if task.total is None else int(task.total)
        left = eta_seconds(int(task.completed), total, task.elapsed)
        return Text("ETA -:--:--" if left is None else f"ETA {clock_text(left)}")


class ProgressReporter:
    """Listener: a row is done when its RowFinished event arrives."""

    def __init__(
        self,
        total: int | None = None,
        *,
        console: Console | None = None,
        enabled: bool | None = None,
        status: Callable[[str], None] | None = None,
        status_every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.console = console or Console()
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.rows = 0
        self.failed_rows = 0
        # Without a bar: status lines through `status`, at most one per `status_every` seconds.
        self._status = None if self.enabled else status
        self._status_every = status_every
        self._clock = clock
        self._started = 0.0
        self._last_status = 0.0
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RowFinished):
            self._row(event)
        elif isinstance(event, RunStarted):
            if self.total is None:
                self.total = event.rows
            self._started = self._last_status = self._clock()
            self._start(event.flow_name)
        elif isinstance(event, RunError):
            self._stopped()
        elif isinstance(event, RunFinished):
            self.close()

    def _columns(self) -> list[ProgressColumn]:
        columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}")]
        if self.total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        else:
            columns.append(TextColumn("{task.completed:,} rows"))
        columns += [RateColumn(), TextColumn("{task.fields[failures]}"), TimeElapsedColumn()]
        if self.total is not None:
            columns.append(EtaColumn())
        return columns

    def _start(self, flow_name: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._progress is not None:
                return
            self._progress = Progress(*self._columns(), console=self.console, transient=False)
            self._task = self._progress.add_task(flow_name, total=self.total, failures="")
            self._progress.start()

    def _row(self, event: RowFinished) -> None:
        with self._lock:
            self.rows += 1
            self.failed_rows += event.status == FAILED
            if self._status is not None:
                self._maybe_status()
            if self._progress is None or self._task is None:
                return
            failures = f"[red]{self.failed_rows:,} failed[/red]" if self.failed_rows else ""
            self._progress.update(self._task, advance=1, failures=failures)

    def _maybe_status(self) -> None:
        now = self._clock()
        if now - self._last_status < self._status_every:
            return
        self._last_status = now
        assert self._status is not None
        self._status(self.status_line(now - self._started))

    def status_line(self, elapsed: float) -> str:
        """`progress: 1,200/2,000 rows (60%), 3 failed, 850 rows/s, ETA 0:00:01`"""
        done = f"{self.rows:,}"
        if self.total:
            done += f"/{self.total:,} rows ({100 * self.rows // self.total}%)"
        else:
            done += " rows"
        parts = [done]
        if self.failed_rows:
            parts.append(f"{self.failed_rows:,} failed")
        rate = true_rate(self.rows, elapsed)
        if rate is not None:
            parts.append(f"{rate:,.0f} rows/s")
        left = eta_seconds(self.rows, self.total, elapsed)
        if left is not None:
            parts.append(f"ETA {clock_text(left)}")
        return "progress: " + ", ".join(parts)

    def _stopped(self) -> None:
        """The run broke (its error is on the console): say so on the bar before it closes."""
        with self._lock:
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, failures="[red]run stopped[/red]")

    def close(self) -> None:
        """Stop the live display (also on RunFinished); safe to call twice."""
        with self._lock:
            progress, self._progress = self._progress, None
        if progress is not None:
            progress.stop()
