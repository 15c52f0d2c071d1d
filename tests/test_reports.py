"""JSON and JUnit reports, and the progress bar, fed events built by hand."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from cio_flows.errors import Location
from cio_flows.flow.model import Step
from cio_flows.redact import Redactor
from cio_flows.reporting import JsonReport, JUnitReport, JUnitSuite, ProgressReporter
from cio_flows.run.events import RowFinished, RunFinished, RunStarted, RunSummary, StepFinished

IDENTIFY = Step("identify", {}, "create person", 0, "steps", Location("flows/onboard.yaml", 12, 5))
WELCOME = Step("track", {}, "welcome event", 1, "steps", Location("flows/onboard.yaml", 20, 5))


def run_events(rows: int = 4, failing: tuple[int, ...] = (2,), unknown: tuple[int, ...] = (3,)):
    """RunStarted, per row: identify (may fail or be unknown) then track (skipped after it)."""
    yield RunStarted("r1", "onboard", "flows/onboard.yaml", "eu", {"track": "http://x"})
    summary = RunSummary(
        "r1", "onboard", rows=rows, elapsed=1.5, requests=9, retries=2, throttled=1
    )
    for n in range(1, rows + 1):
        key = f"u{n}"
        if n in failing or n in unknown:
            status = "failed" if n in failing else "unknown"
            yield StepFinished(IDENTIFY, n, key, status, 0.2, 3, f"HTTP 400 on row {n}")
            yield StepFinished(WELCOME, n, key, "skipped", 0.0)
            summary.counts[status] += 1
            summary.counts["skipped"] += 1
            summary.failed_rows.append(n)
            yield RowFinished(n, key, "failed")
        else:
            yield StepFinished(IDENTIFY, n, key, "ok", 0.1, 1)
            yield StepFinished(WELCOME, n, key, "ok", 0.05, 1)
            summary.counts["ok"] += 2
            yield RowFinished(n, key, "ok")
    yield RunFinished(summary)


def feed(listener, events) -> None:
    for event in events:
        listener(event)


# --- JSON --------------------------------------------------------------------------------------


def test_json_report_contents(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.json"
    feed(JsonReport(path), run_events())
    report = json.loads(path.read_text())
    assert report["run_id"] == "r1"
    assert (report["flow"], report["flow_path"], report["region"]) == (
        "onboard",
        "flows/onboard.yaml",
        "eu",
    )
    assert report["status"] == "failed"
    assert report["counts"] == {"ok": 4, "failed": 1, "skipped": 2, "unknown": 1}
    assert (report["rows"], report["failed_rows"], report["elapsed"]) == (4, [2, 3], 1.5)
    assert (report["requests"], report["retries"], report["throttled"]) == (9, 2, 1)
    assert report["started_at"] <= report["finished_at"]
    assert report["failures"] == [
        {
            "row": 2,
            "row_key": "u2",
            "step": "create person",
            "step_key": "steps.0",
            "kind": "identify",
            "status": "failed",
            "error": "HTTP 400 on row 2",
            "location": "flows/onboard.yaml:12:5",
        },
        {
            "row": 3,
            "row_key": "u3",
            "step": "create person",
            "step_key": "steps.0",
            "kind": "identify",
            "status": "unknown",
            "error": "HTTP 400 on row 3",
            "location": "flows/onboard.yaml:12:5",
        },
    ]
    identify, welcome = report["steps"]
    assert 200.0 <= identify.pop("elapsed_ms") <= 1500.0  # a wall span within the run
    assert identify == {
        "name": "create person",
        "kind": "identify",
        "location": "flows/onboard.yaml:12:5",
        "count": 4,
        "ok": 2,
        "failed": 1,
        "unknown": 1,
        "skipped": 0,
        "latency_ms": 600.0,
        "avg_ms": 150.0,
    }
    assert (welcome["count"], welcome["ok"], welcome["skipped"], welcome["avg_ms"]) == (
        4,
        2,
        2,
        50.0,
    )


def test_json_report_keeps_failures_only_up_to_a_cap(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    report = JsonReport(path, max_failures=5)
    feed(report, run_events(rows=1000, failing=tuple(range(1, 21)), unknown=()))
    data = json.loads(path.read_text())
    assert len(data["failures"]) == 5 and data["failures_omitted"] == 15
    assert data["steps"][0]["count"] == 1000
    assert len(report.collector.failures) == 5  # ok outcomes are never held


def test_json_report_passed_run_and_redaction(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    secret = "app-secret-abcdef"
    events = list(run_events(rows=2, failing=(), unknown=()))
    events.insert(1, StepFinished(IDENTIFY, 9, "u9", "failed", 0.1, 1, f"bad key {secret}"))
    events[-1].summary.counts["failed"] = 0  # the summary says passed; the report still lists it
    feed(JsonReport(path, redactor=Redactor([secret])), events)
    text = path.read_text()
    assert secret not in text
    data = json.loads(text)
    assert data["status"] == "passed"
    assert data["failures"][0]["error"] == "bad key ***"


# --- JUnit -------------------------------------------------------------------------------------


def parse(path: Path) -> tuple[ET.Element, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    return root, suite


def test_junit_steps_mode(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    feed(JUnitReport(path), run_events())
    root, suite = parse(path)
    assert suite.get("name") == "onboard"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    assert root.get("tests") == "2" and root.get("failures") == "1"
    identify, welcome = suite.findall("testcase")
    assert (identify.get("name"), identify.get("classname")) == ("create person", "onboard")
    assert (identify.get("file"), identify.get("line")) == ("flows/onboard.yaml", "12")
    failure = identify.find("failure")
    assert failure.get("message") == "2 of 4 row(s) failed"
    assert failure.text.splitlines() == [
        "row 2 [u2]: failed: HTTP 400 on row 2",
        "row 3 [u3]: unknown: HTTP 400 on row 3",
    ]
    assert welcome.find("failure") is None and welcome.find("skipped") is None
    assert 0.2 <= float(identify.get("time")) <= 1.5  # the wall span, not the 0.6 s summed


def test_junit_steps_mode_truncates_to_50_rows(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    feed(JUnitReport(path, "steps"), run_events(rows=100, failing=tuple(range(1, 81)), unknown=()))
    _, suite = parse(path)
    failure = suite.find("testcase/failure")
    lines = failure.text.splitlines()
    assert failure.get("message") == "80 of 100 row(s) failed"
    assert len(lines) == 51 and lines[-1] == "... and 30 more"


def test_junit_interrupted_run_is_an_error_and_text_is_xml_safe(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    events = list(run_events(rows=1, failing=(1,), unknown=()))
    events[1] = StepFinished(IDENTIFY, 1, "u1", "failed", 0.1, 1, "\x1b[31mred\x1b[0m <&>")
    events[-1].summary.interrupted = True
    feed(JUnitReport(path), events)
    _, suite = parse(path)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    assert "?[31mred?[0m <&>" in suite.find("testcase/failure").text
    assert suite.find("testcase[@name='(run)']/error").get("message") == "interrupted"


def test_junit_suite_one_case_per_flow(tmp_path: Path) -> None:
    suite = JUnitSuite()
    passed = RunSummary("a", "signup", rows=1, elapsed=0.25)
    passed.counts["ok"] = 3
    failed = RunSummary("b", "billing", rows=1, elapsed=0.5)
    failed.counts["failed"] = 2
    suite.add_flow("signup", "flows/signup.yaml", passed, [], 0.25)
    suite.add_flow("billing", "flows/billing.yaml", failed, ["step 'a': 500", "step 'b': 400"], 0.5)
    suite.add_error("broken", "flows/broken.yaml", "flows/broken.yaml:3:1: bad YAML\nmore detail")
    # a flow run through the listener
    feed(suite.listener(), run_events(rows=2, failing=(2,), unknown=()))
    path = tmp_path / "junit.xml"
    suite.write(path)
    root, xml_suite = parse(path)
    assert (xml_suite.get("tests"), xml_suite.get("failures"), xml_suite.get("errors")) == (
        "4",
        "2",
        "1",
    )
    assert root.get("errors") == "1"
    cases = {case.get("name"): case for case in xml_suite.findall("testcase")}
    assert list(cases) == ["signup", "billing", "broken", "onboard"]
    assert len(cases["signup"]) == 0  # no failure, no error
    assert cases["billing"].find("failure").get("message") == "2 step(s) failed"
    assert cases["billing"].find("failure").text == "step 'a': 500\nstep 'b': 400"
    error = cases["broken"].find("error")
    assert error.get("message") == "flows/broken.yaml:3:1: bad YAML"
    assert "more detail" in error.text
    assert cases["onboard"].get("file") == "flows/onboard.yaml"
    assert cases["onboard"].find("failure").text == (
        "flows/onboard.yaml:12:5: step 'create person' (identify): row 2 [u2]: failed: HTTP 400 on row 2"
    )


def test_junit_report_flows_mode(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    feed(JUnitReport(path, mode="flows"), run_events(rows=3, failing=(), unknown=()))
    _, suite = parse(path)
    (case,) = suite.findall("testcase")
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    assert (case.get("name"), case.get("classname")) == ("onboard", "flows/onboard.yaml")
    assert float(case.get("time")) == 1.5


def test_junit_rejects_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="steps' or 'flows"):
        JUnitReport(tmp_path / "x.xml", mode="rows")


# --- progress ----------------------------------------------------------------------------------


def test_progress_is_silent_when_not_a_terminal() -> None:
    out = io.StringIO()
    reporter = ProgressReporter(total=4, console=Console(file=out))
    assert not reporter.enabled
    feed(reporter, run_events())
    assert out.getvalue() == ""
    assert (reporter.rows, reporter.failed_rows) == (4, 2)  # still counted


def test_progress_draws_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    reporter = ProgressReporter(total=4, console=console)
    assert reporter.enabled
    feed(reporter, run_events())
    text = out.getvalue()
    assert "onboard" in text and "4/4" in text and "2 failed" in text and "rows/s" in text
    reporter.close()  # already closed by RunFinished: harmless
