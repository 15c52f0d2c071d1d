"""JUnit XML for CI: one test case per step of a run, or one per flow file (`cio-flows test`)."""

from __future__ import annotations

import re
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..redact import Redactor
from ..run.events import FAILED, UNKNOWN, Event, RunFinished, RunSummary
from .files import write_file
from .json_report import ROW_ERROR, RUN_ERROR, RunCollector

MAX_LISTED = 50  # failures listed in one <failure>; the rest are counted
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0


def _text(value: object) -> str:
    return _NOT_XML.sub("?", str(value))


def _listing(lines: list[str], total: int) -> str:
    shown = lines[:MAX_LISTED]
    more = total - len(shown)
    return "\n".join(shown + ([f"... and {more} more"] if more > 0 else []))


@dataclass(frozen=True)
class _Case:
    name: str
    classname: str
    time: float
    file: str | None = None
    line: int | None = None
    failure: tuple[str, str] | None = None  # (message, text)
    error: tuple[str, str] | None = None
    skipped: bool | str = False  # a string: why (a flow that did not run)


def _suite_element(name: str, cases: list[_Case], elapsed: float) -> ET.Element:
    suite = ET.Element(
        "testsuite",
        name=_text(name),
        tests=str(len(cases)),
        failures=str(sum(c.failure is not None for c in cases)),
        errors=str(sum(c.error is not None for c in cases)),
        skipped=str(sum(bool(c.skipped) for c in cases)),
        time=f"{elapsed:.3f}",
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
        hostname=socket.gethostname(),
    )
    for case in cases:
        element = ET.SubElement(
            suite, "testcase", name=_text(case.name), classname=_text(case.classname)
        )
        element.set("time", f"{case.time:.3f}")
        if case.file:
            element.set("file", _text(case.file))
        if case.line:
            element.set("line", str(case.line))
        for tag, detail in (("failure", case.failure), ("error", case.error)):
            if detail is not None:
                ET.SubElement(element, tag, message=_text(detail[0])).text = _text(detail[1])
        if case.skipped:
            why = {"message": _text(case.skipped)} if isinstance(case.skipped, str) else {}
            ET.SubElement(element, "skipped", why)
    return suite


def write_xml(path: str | Path, suite: ET.Element) -> None:
    """<testsuites> around one <testsuite>, written via a temporary file."""
    root = ET.Element("testsuites", name="cio-flows")
    for attr in ("tests", "failures", "errors", "skipped", "time"):
        root.set(attr, suite.get(attr, "0"))
    root.append(suite)
    ET.indent(root)
    write_file(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _row_label(row: int | None, row_key: str | None) -> str:
    label = f"row {row}" if row is not None else "run"
    return label + (f" [{row_key}]" if row_key and row_key != str(row) else "")


class JUnitSuite:
    """Many runs, one test case per flow file: what `cio-flows test PATH...` writes."""

    def __init__(self, name: str = "cio-flows") -> None:
        self.name = name
        self._cases: list[_Case] = []
        self._lock = threading.Lock()

    def add_flow(
        self,
        flow_name: str,
        flow_path: str,
        summary: RunSummary,
        failures: list[str],
        elapsed: float,
    ) -> None:
        """A flow that ran; `failures` are its failed steps, one line each."""
        failure = None
        if not summary.ok:
            bad = summary.counts[FAILED] + summary.counts[UNKNOWN]
            message = f"{bad} step(s) failed" if bad else "the run did not finish"
            if summary.interrupted and bad:
                message += "; the run did not finish"
            failure = (message, _listing(failures, max(len(failures), bad)))
        case = _Case(flow_name, flow_path, elapsed, file=flow_path, failure=failure)
        with self._lock:
            self._cases.append(case)

    def add_error(self, flow_name: str, flow_path: str, message: str, elapsed: float = 0.0) -> None:
        """A flow that could not even start (it does not load, bad input, missing keys)."""
        first_line = message.splitlines()[0] if message else "error"
        case = _Case(flow_name, flow_path, elapsed, file=flow_path, error=(first_line, message))
        with self._lock:
            self._cases.append(case)

    def add_not_run(self, flow_name: str, flow_path: str, reason: str) -> None:
        """A selected flow that did not start (--fail-fast after a failure): skipped."""
        case = _Case(flow_name, flow_path, 0.0, file=flow_path, skipped=reason or "not run")
        with self._lock:
            self._cases.append(case)

    def listener(self, *, redactor: Redactor | None = None) -> Callable[[Event], None]:
        """A listener for one run that adds its flow to this suite when the run finishes."""
        collector = RunCollector(max_failures=MAX_LISTED, redactor=redactor)

        def listen(event: Event) -> None:
            if not isinstance(event, RunFinished):
                collector.add(event)
                return
            started = collector.started
            path = started.flow_path if started else event.summary.flow_name
            lines = [_failure_line(f) for f in collector.failures]
            summary = event.summary
            self.add_flow(summary.flow_name, path, summary, lines, summary.elapsed)

        return listen

    def element(self) -> ET.Element:
        with self._lock:
            cases = list(self._cases)
        return _suite_element(self.name, cases, sum(c.time for c in cases))

    def write(self, path: str | Path) -> None:
        write_xml(path, self.element())


def _failure_line(failure: dict[str, Any]) -> str:
    where = _row_label(failure["row"], failure["row_key"])
    if failure["step"] is None:  # a row that could not start, the run breaking
        return f"{where}: {failure['status']}: {failure['error'] or ''}"
    return (
        f"{failure['location']}: step '{failure['step']}' ({failure['kind']}): {where}: "
        f"{failure['status']}: {failure['error'] or ''}"
    )


class JUnitReport:
    """Listener: on RunFinished writes JUnit XML for the run to `path`.

    mode="steps": one test case per step, aggregated over rows.
    mode="flows": one test case for the whole flow (as `cio-flows test` reports each file).
    """

    def __init__(
        self,
        path: str | Path,
        mode: Literal["steps", "flows"] = "steps",
        *,
        redactor: Redactor | None = None,
    ) -> None:
        if mode not in ("steps", "flows"):
            raise ValueError(f"JUnit mode must be 'steps' or 'flows', not {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self._collector = RunCollector(per_step=MAX_LISTED, redactor=redactor)
        self._suite = JUnitSuite()
        self._flows_listener = self._suite.listener(redactor=redactor)

    def __call__(self, event: Event) -> None:
        if self.mode == "flows":
            self._flows_listener(event)
            if isinstance(event, RunFinished):
                self._suite.write(self.path)
            return
        if isinstance(event, RunFinished):
            write_xml(self.path, self._steps_suite(event.summary))
        else:
            self._collector.add(event)

    def _steps_suite(self, summary: RunSummary) -> ET.Element:
        c = self._collector
        flow = summary.flow_name
        by_step: dict[str, list[str]] = {}
        for failure in c.failures:
            where = _row_label(failure["row"], failure["row_key"])
            by_step.setdefault(failure["step_key"], []).append(
                f"{where}: {failure['status']}: {failure['error'] or ''}"
            )
        cases = []
        for key, stats in c.steps.items():
            bad = stats.failed + stats.unknown
            listed = None
            if bad:
                message = f"{bad} of {stats.count} row(s) failed"
                listed = (message, _listing(by_step.get(key, []), bad))
            location = stats.location
            skipped = stats.skipped == stats.count
            cases.append(
                _Case(
                    stats.name,
                    flow,
                    stats.span(summary.elapsed),  # wall time, never the sum over rows
                    location.file,
                    location.line,
                    listed,
                    skipped=skipped,
                )
            )
        row_errors = by_step.get(ROW_ERROR, [])
        if row_errors:
            message = f"{len(row_errors)} row(s) could not start"
            cases.append(_Case("(rows)", flow, 0.0, failure=(message, _listing(row_errors, 0))))
        run_errors = by_step.get(RUN_ERROR, [])
        if run_errors:
            cases.append(
                _Case("(run)", flow, 0.0, error=("the run stopped", "\n".join(run_errors)))
            )
        elif summary.interrupted:
            error = ("interrupted", "the run was stopped before every row ran")
            cases.append(_Case("(run)", flow, 0.0, error=error))
        return _suite_element(flow, cases, summary.elapsed)
