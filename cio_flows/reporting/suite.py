"""Reports of a suite (`cio-flows test --report/--junit`): one entry per selected flow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import FlowInputError
from ..printable import printable
from ..run.events import EXIT_FAILED, EXIT_INVALID, EXIT_OK, FlowStatus, RunSummary
from .json_report import write_json
from .junit import JUnitSuite


class FlowOutcome(Protocol):
    """What a suite knows of one selected flow (scenarios.ScenarioResult)."""

    path: Path
    name: str
    summary: RunSummary | None
    invalid: FlowInputError | None
    failures: list[str]
    elapsed: float
    not_run: str | None
    tags: tuple[str, ...]
    report: dict[str, Any] | None

    @property
    def status(self) -> FlowStatus: ...

    @property
    def exit_code(self) -> int: ...


def suite_report(
    results: Sequence[FlowOutcome], *, elapsed: float, exit_code: int, cause: str | None
) -> dict[str, Any]:
    """The JSON report of a suite: its outcome and one entry per selected flow."""
    counts = {status.value: 0 for status in FlowStatus}
    for result in results:
        counts[result.status] += 1
    said: dict[int, FlowStatus] = {EXIT_OK: FlowStatus.PASSED, EXIT_INVALID: FlowStatus.INVALID}
    status = said.get(exit_code, FlowStatus.FAILED).value
    return {
        "status": status,
        "exit_code": exit_code,
        "cause": cause,
        "elapsed": round(elapsed, 3),
        "counts": counts,
        "flows": [_flow_entry(result) for result in results],
    }


def _flow_entry(result: FlowOutcome) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": result.name,
        "path": str(result.path),
        "tags": list(result.tags),
        "status": result.status,
        "exit_code": result.exit_code,
        "elapsed": round(result.elapsed, 3),
        "failures": list(result.failures),
    }
    if result.invalid is not None:
        entry["error"] = result.invalid.describe()
    if result.not_run is not None:
        entry["not_run"] = result.not_run
    if result.report is not None:
        entry["report"] = result.report  # as `cio-flows run --report` writes it
    return entry


def write_suite_reports(
    results: Sequence[FlowOutcome],
    *,
    elapsed: float,
    exit_code: int,
    cause: str | None,
    redact: Callable[[str], str],
    report: str | Path | None = None,
    junit: str | Path | None = None,
) -> None:
    """The JSON report and the JUnit XML (one test case per selected flow), redacted."""
    if report:
        data = suite_report(results, elapsed=elapsed, exit_code=exit_code, cause=cause)
        write_json(Path(report), _redacted(data, redact))
    if junit:
        suite = JUnitSuite("cio-flows")
        for result in results:
            path = str(result.path)
            if result.invalid is not None:
                suite.add_error(result.name, path, redact(result.invalid.describe()))
            elif result.summary is None:
                suite.add_not_run(result.name, path, result.not_run or "not run")
            else:
                failures = [redact(f) for f in result.failures]
                suite.add_flow(result.name, path, result.summary, failures, result.elapsed)
        suite.write(junit)


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redact) for item in value]
    return value


class SuiteConsole:
    """The lines `cio-flows test` prints: one per flow as it finishes, then the outcome."""

    def __init__(self, write: Callable[[str], None], redact: Callable[[str], str]) -> None:
        self._write = write
        # Masked, then its control characters escaped: the lines hold the server's words.
        self._redact: Callable[[str], str] = lambda text: printable(redact(text), lines=True)

    def flow(self, result: FlowOutcome) -> None:
        write, redact = self._write, self._redact
        if result.invalid is not None:
            write(redact(f"INVALID  {result.path}: {result.invalid.describe()}"))
        elif result.summary is None:
            write(redact(f"NOT RUN  {result.path}: {result.not_run or 'not run'}"))
        else:
            mark = "passed" if result.status == FlowStatus.PASSED else "FAILED"
            write(redact(f"{mark:<8} {result.name} ({result.path}) in {result.elapsed:.2f} s"))
            for failure in result.failures:
                write(redact(f"         {failure}"))

    def outcome(self, results: Sequence[FlowOutcome], exit_code: int, cause: str | None) -> None:
        """`N passed, M failed[, K not run]`, and for exit 2, 3 and 4 the cause."""
        counts = dict.fromkeys(FlowStatus, 0)
        for result in results:
            counts[result.status] += 1
        line = f"{counts[FlowStatus.PASSED]} passed, {counts[FlowStatus.FAILED]} failed"
        also = (FlowStatus.NOT_RUN, FlowStatus.INVALID)
        line += "".join(f", {counts[k]} {k}" for k in also if counts[k])
        if exit_code not in (EXIT_OK, EXIT_FAILED) and cause:
            line += f"; exit {exit_code}: {cause}"
        self._write(self._redact(line))
