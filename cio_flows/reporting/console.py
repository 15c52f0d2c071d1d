"""One line per step, then a summary. Every line goes through the redactor.

A data row's skipped steps are counted, not printed (unless `verbose_skips`): the summary names
each skipped step once with its reason and count, so thousands of `when` skips do not bury the
failures, which are always printed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ..printable import printable
from ..run.events import (
    FAILED,
    OK,
    SKIPPED,
    UNKNOWN,
    Event,
    RowFailed,
    RunError,
    RunFinished,
    RunStarted,
    StepFinished,
)

_MARKS = {OK: "ok", FAILED: "FAILED", SKIPPED: "skipped", UNKNOWN: "UNKNOWN"}
ONCE_SKIP = "done once already"  # a step skipped for its `once` key (run/steps.py)
# How run/settle.py settled an unknown send on resume, in the summary's words.
SETTLE_WORDS = {
    "found": "found in Customer.io (not sent again)",
    "absent": "not found after the grace period (sent again)",
    "unreadable": "left unknown (Customer.io could not be read)",
}


class ConsoleReporter:
    """Every line with its control characters escaped: errors quote the server and the data,
    whose escape sequences could otherwise rewrite the terminal (a forged "all ok")."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        verbose_rows: bool = True,
        verbose_skips: bool | None = None,
    ) -> None:
        self._out = write
        self._verbose_rows = verbose_rows
        self._verbose_skips = verbose_rows if verbose_skips is None else verbose_skips
        self._skips: Counter[tuple[str, str, str]] = Counter()  # (step, kind, reason) -> rows

    def _write(self, line: str) -> None:
        self._out(printable(line, lines=True))

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._write(f"flow {event.flow_name} ({event.flow_path}), region {event.region}")
            for note in event.notes:
                self._write(f"  note: {note}")
        elif isinstance(event, StepFinished):
            self._step(event)
        elif isinstance(event, RowFailed):
            where = "the run" if event.row_number is None else f"row {event.row_number}"
            self._write(f"  {_MARKS[FAILED]:<7} {where}: could not start")
            self._write(f"          {event.error}")
        elif isinstance(event, RunError):
            self._write(f"  {'ERROR':<7} the run stopped: {event.error}")
        elif isinstance(event, RunFinished):
            self._summary(event)

    def _step(self, event: StepFinished) -> None:
        if event.status == OK and not self._verbose_rows and event.row_number:
            return
        if event.status == SKIPPED and not self._verbose_skips and event.row_number:
            reason = str(event.detail or "")
            if reason.startswith(ONCE_SKIP):  # one key a row: counted together (-v: each key)
                reason = f"{ONCE_SKIP} (its once key is in the journal)"
            self._skips[(event.step.name, event.step.kind, reason)] += 1
            return
        key = f" [{printable(event.row_key)}]" if event.row_key else ""  # data: one line
        row = f"row {event.row_number}{key}: "
        prefix = row if event.row_number else ""
        line = (
            f"  {_MARKS[event.status]:<7} {prefix}{event.step.name} ({event.step.kind})"
            f"  {event.elapsed * 1000:.0f} ms"
        )
        if event.attempts > 1:
            line += f", {event.attempts} requests"
        if event.detail:
            line += f"  {printable(str(event.detail))}"
        self._write(line)
        if event.error:
            self._write(f"          {event.error}")

    def _settled(self, settled: list[dict[str, str]]) -> None:
        """How a resume settled the sends a crash left unknown, by reading Customer.io."""
        tally = {how: sum(item["how"] == how for item in settled) for how in SETTLE_WORDS}
        said = ", ".join(f"{tally[how]} {words}" for how, words in SETTLE_WORDS.items())
        self._write(f"unknown sends settled: {said}")
        for item in settled[:20]:
            self._write(f"  row {item['row_key']}, {item['step']}: {item['reason']}")
        if len(settled) > 20:
            self._write(f"  and {len(settled) - 20} more (see the JSON report)")

    def _skipped(self) -> None:
        """One line per skipped step and reason, with its row count (the rows: -v)."""
        for (name, kind, reason), rows in sorted(self._skips.items()):
            why = f": {reason}" if reason else ""
            self._write(f"  {_MARKS[SKIPPED]:<7} {name} ({kind}) in {rows:,} row(s){why}")

    def _summary(self, event: RunFinished) -> None:
        s = event.summary
        self._skipped()
        counts = ", ".join(
            f"{s.counts[k]} {k}" for k in (OK, FAILED, UNKNOWN, SKIPPED) if s.counts[k]
        )
        rows = f" over {s.rows} row(s)" if s.rows > 1 else ""
        rows += f" in {s.processes} processes" if s.processes > 1 else ""
        self._write(
            f"summary: {counts or 'nothing ran'}{rows} in {s.elapsed:.2f} s"
            f" ({s.requests} request(s), {s.retries} retried, {s.throttled} throttled)"
        )
        if s.failed_rows and s.rows > 1:
            shown = ", ".join(map(str, s.failed_rows[:20]))
            more = f" and {len(s.failed_rows) - 20} more" if len(s.failed_rows) > 20 else ""
            self._write(f"failed rows: {shown}{more}")
        if s.settled:
            self._settled(s.settled)
        if s.interrupted:
            self._write("interrupted: the run did not finish")
        self._write(f"result: {'passed' if s.ok else 'failed'} (run id {s.run_id})")
