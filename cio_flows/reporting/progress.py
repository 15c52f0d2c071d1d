"""A live progress bar (rows done, rows/s, ETA, failures) when stdout is a terminal.

Elsewhere (CI logs, pipes, notebooks) it stays silent: the console reporter's plain lines say it.
"""

from __future__ import annotations

import threading

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
    TimeRemainingColumn,
)
from rich.text import Text

from ..run.events import FAILED, Event, RowFinished, RunError, RunFinished, RunStarted


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("- rows/s" if speed is None else f"{speed:,.0f} rows/s")


class ProgressReporter:
    """Listener: a row is done when its RowFinished event arrives."""

    def __init__(
        self,
        total: int | None = None,
        *,
        console: Console | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.total = total
        self.console = console or Console()
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.rows = 0
        self.failed_rows = 0
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RowFinished):
            self._row(event)
        elif isinstance(event, RunStarted):
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
            columns.append(TimeRemainingColumn())
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
            if self._progress is None or self._task is None:
                return
            failures = f"[red]{self.failed_rows:,} failed[/red]" if self.failed_rows else ""
            self._progress.update(self._task, advance=1, failures=failures)

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
