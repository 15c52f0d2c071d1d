"""Rows that cannot start and runs that break: their own events, shown by every listener."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from cio_flows.errors import Location
from cio_flows.flow.model import Step
from cio_flows.reporting import ConsoleReporter, JsonReport, JUnitReport, JUnitSuite
from cio_flows.run.events import (
    Failure,
    RowFailed,
    RowFinished,
    RunError,
    RunFinished,
    RunStarted,
    RunSummary,
    StepFinished,
)
from cio_flows.run.journal import Journal

IDENTIFY = Step("identify", {}, "create", 0, "steps", Location("flow.yaml", 6, 5))
FLOW = Location("flow.yaml", 3, 25)
ROW_ERROR = "flow.yaml:3:25: row 2: undefined name 'id'"
RUN_ERROR = "rows.jsonl:4:7: row 4: invalid JSON: Expecting value"


def events():
    summary = RunSummary("r1", "f", rows=3, interrupted=True, failed_rows=[2])
    summary.counts.update(ok=1, failed=2)
    failure = Failure("template", ROW_ERROR, FLOW, row=2, found="no field 'id'")
    return [
        RunStarted("r1", "f", "flow.yaml", "us", {}),
        StepFinished(IDENTIFY, 1, "u1", "ok", 0.01, 1),
        RowFinished(1, "u1", "ok"),
        RowFailed(2, failure),
        RowFinished(2, None, "failed"),
        RunError(Failure("data", RUN_ERROR, Location("rows.jsonl", 4, 7), row=4)),
        RunFinished(summary),
    ]


def test_console_shows_the_row_and_the_run_error():
    lines: list[str] = []
    reporter = ConsoleReporter(lines.append)
    for event in events():
        reporter(event)
    text = "\n".join(lines)
    assert "FAILED  row 2: could not start" in text and ROW_ERROR in text
    assert f"ERROR   the run stopped: {RUN_ERROR}" in text


def test_json_report_lists_them_as_failures_of_no_step(tmp_path):
    report = JsonReport(tmp_path / "r.json")
    for event in events():
        report(event)
    failures = json.loads((tmp_path / "r.json").read_text())["failures"]
    assert [(f["row"], f["step"], f["step_key"], f["error"]) for f in failures] == [
        (2, None, "(row)", ROW_ERROR),
        (4, None, "(run)", RUN_ERROR),
    ]
    assert failures[0]["failure"] == {
        "kind": "template",
        "location": "flow.yaml:3:25",
        "expected": None,
        "found": "no field 'id'",
        "outcome": "failed",
        "status": None,
    }


def test_junit_gives_them_cases_of_their_own(tmp_path):
    report = JUnitReport(tmp_path / "j.xml")
    for event in events():
        report(event)
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "j.xml").iter("testcase")}
    assert set(cases) == {"create", "(rows)", "(run)"}
    assert ROW_ERROR in cases["(rows)"].find("failure").text
    assert cases["(run)"].find("error").get("message") == "the run stopped"
    assert RUN_ERROR in cases["(run)"].find("error").text

    suite = JUnitSuite()
    listen = suite.listener()
    for event in events():
        listen(event)
    [case] = suite.element().iter("testcase")
    assert f"row 2: failed: {ROW_ERROR}" in case.find("failure").text


def test_the_journal_keeps_them_where_no_resume_looks(tmp_path):
    with Journal(tmp_path / "journal.db") as journal:
        listen = journal.listener("r1")
        for event in events():
            listen(event)
        outcomes = journal.outcomes("r1")
        assert outcomes[("row 2", "(row)")].error == ROW_ERROR
        assert outcomes[("-", "(run)")].error == RUN_ERROR
        assert journal.row_outcomes("r1", "u1") == {"steps.0": outcomes[("u1", "steps.0")]}
        assert journal.run("r1").status == "interrupted"
