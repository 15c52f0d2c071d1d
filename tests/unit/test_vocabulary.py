"""Statuses, outcomes, failure kinds and exit codes are enums whose values outside tools rely
on (CI scripts read the exit codes; reports and journals hold the words): pinned here."""

from __future__ import annotations

import json

from cio_flows.errors import Outcome
from cio_flows.run.events import EXIT_INVALID, FAILED, ExitCode, FailureKind, FlowStatus, Status
from cio_flows.run.journal_schema import RunStatus


def test_exit_codes_keep_their_numbers() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "INVALID": 2,
        "REFUSED": 3,
        "UNAVAILABLE": 4,
    }
    assert EXIT_INVALID == 2 and f"exit {ExitCode.UNAVAILABLE}" == "exit 4"


def test_words_keep_their_spelling() -> None:
    assert [s.value for s in Status] == ["ok", "failed", "skipped", "unknown"]
    assert [o.value for o in Outcome] == ["failed", "unknown"]
    assert [r.value for r in RunStatus] == ["running", "passed", "failed", "interrupted"]
    assert [f.value for f in FlowStatus] == ["passed", "failed", "invalid", "not run"]
    assert {k.value for k in FailureKind} == {
        "expectation",
        "wait_timeout",
        "http",
        "transport",
        "payload",
        "template",
        "data",
        "credentials",
        "input",
        "not_resent",
    }


def test_they_read_and_write_as_the_plain_values() -> None:
    assert FAILED == "failed" and Outcome.UNKNOWN == Status.UNKNOWN
    assert (
        json.dumps([Status.SKIPPED, ExitCode.REFUSED, FailureKind.HTTP]) == '["skipped", 3, "http"]'
    )
    assert Status("ok") is Status.OK and ExitCode(1) is ExitCode.FAILED
