"""The executor and its step pipeline, in memory: order, skips, finally, resume, when, failures."""

from __future__ import annotations

import pytest

from cio_flows.errors import JournalError
from cio_flows.run.events import (
    EXPECTATION,
    HTTP,
    NOT_RESENT,
    TEMPLATE,
    RowFailed,
    RowFinished,
    RunError,
    RunFinished,
    StepFinished,
)
from cio_flows.run.executor import Executor, PreviousOutcome
from cio_flows.run.journal import Journal
from cio_flows.run.steps import StepPipeline

from .conftest import answer, path_of

FLOW = """\
version: 1
name: unit
steps:
  - name: create
    identify: {userId: u1, traits: {plan: free}}
  - name: lookup
    search: {filter: {attribute: {field: plan, operator: eq, value: free}}}
    save: found
  - name: event
    track: {userId: u1, event: "seen {{ steps.found.ids[0] }}"}
finally:
  - name: cleanup
    delete: {userId: u1}
"""


def test_steps_run_in_order_then_finally(harness):
    h = harness(FLOW)
    summary = h.run()
    assert summary.ok and summary.counts["ok"] == 4
    assert h.statuses() == [
        (None, "create", "ok"),
        (None, "lookup", "ok"),
        (None, "event", "ok"),
        (None, "cleanup", "ok"),
    ]
    assert h.paths == ["/v1/identify", "/v1/customers", "/v1/track", "/v1/track"]
    assert h.calls[2].body["event"] == "seen u1"  # the saved answer reached the next step
    assert h.calls[3].body["event"] == "User Deleted"
    assert h.steps[1].saved["ids"] == ["u1"]
    assert isinstance(h.events[-1], RunFinished)


def test_a_failed_step_skips_the_rest_but_finally_runs(harness):
    h = harness(FLOW)

    def refuse_identify(method, url, headers, body):
        if url.endswith("/v1/identify"):
            return 400, {}, {"errors": [{"message": "bad trait"}]}
        return answer(method, url, headers, body)

    h.handler = refuse_identify
    summary = h.run()
    assert summary.exit_code == 1 and summary.failed_rows == [0]
    assert [s for _, _, s in h.statuses()] == ["failed", "skipped", "skipped", "ok"]
    assert h.paths == ["/v1/identify", "/v1/track"]
    assert h.calls[1].body["event"] == "User Deleted"
    failure = h.steps[0].failure
    assert failure.kind == HTTP and failure.status == 400 and failure.outcome == "failed"
    assert failure.step == "create" and failure.location == h.steps[0].step.location
    assert h.steps[0].error == failure.message and "HTTP 400: bad trait" in failure.message
    assert h.steps[1].failure is None and h.steps[1].error is None


def test_resume_replays_what_succeeded_and_restores_saves(harness):
    h = harness(FLOW)
    saved = {"ids": ["u9"]}
    before = {"steps.0": PreviousOutcome("ok"), "steps.1": PreviousOutcome("ok", saved)}
    h.run(previous=lambda row_key: before if row_key == "-" else {})
    assert [(e.status, e.detail) for e in h.steps[:2]] == [("ok", "done before")] * 2
    assert [c.body["event"] for c in h.calls] == ["seen u9", "User Deleted"]


SEND = """\
version: 1
name: send
steps:
  - name: mail
    send_email: {transactional_message_id: 7, to: a@example.com, identifiers: {id: u1}}
"""


def test_an_unknown_outcome_is_not_resent_unless_asked(harness):
    h = harness(SEND)
    previous = {"steps.0": PreviousOutcome("unknown")}
    summary = h.run(previous=lambda _key: previous)
    assert summary.exit_code == 4 and h.calls == []  # a send whose outcome is unknown
    [event] = h.steps
    assert event.status == "unknown" and event.failure.kind == NOT_RESENT
    assert event.failure.outcome == "unknown" and "--resend-unknown" in event.error

    summary = h.run(previous=lambda _key: previous, resend_unknown=True)
    assert summary.ok and h.paths == ["/v1/send/email"]


def test_a_send_that_may_have_arrived_is_unknown_and_marked_in_flight_first(harness):
    h = harness(SEND)
    marks: list[tuple[str, str, int]] = []
    h.handler = lambda *request: (503, {}, {"meta": {"error": "busy"}})
    summary = h.run(in_flight=lambda row, step, facts: marks.append((row, step, len(h.calls))))
    assert marks == [("-", "steps.0", 0)]  # committed before the request left
    [event] = h.steps
    assert event.status == "unknown" and event.attempts == 1  # never retried: not repeatable
    assert event.failure.outcome == "unknown" and event.failure.status == 503
    assert event.error.endswith("(outcome unknown: not resent)")
    assert summary.counts["unknown"] == 1


def test_retried_requests_are_counted_as_attempts(harness):
    h = harness(FLOW)
    seen: list[str] = []

    def flaky_search(method, url, headers, body):
        if path_of(url) == "/v1/customers" and len(seen) < 2:
            seen.append(url)
            return 503, {}, None
        return answer(method, url, headers, body)

    h.handler = flaky_search
    assert h.run().ok
    assert h.steps[1].attempts == 3 and h.steps[0].attempts == 1


def test_when_false_skips_without_sending(harness):
    h = harness(
        "version: 1\nname: w\nvars: {go: false}\nsteps:\n"
        "  - identify: {userId: u1}\n    when: go\n"
        "  - track: {userId: u1, event: e}\n"
    )
    assert h.run().ok
    assert [(e.status, e.detail) for e in h.steps] == [("skipped", "when is false"), ("ok", None)]
    assert h.paths == ["/v1/track"]


def test_a_failed_expectation_names_the_operand_that_was_false(harness):
    h = harness(
        "version: 1\nname: e\nsteps:\n"
        "  - search: {filter: {attribute: {field: plan, operator: eq, value: free}}}\n"
        '    expect: response.count == 1 and response.ids == ["nobody"]\n'
    )
    assert h.run().exit_code == 1
    failure = h.steps[0].failure
    assert failure.kind == EXPECTATION
    assert (failure.expected, failure.found) == ('["nobody"]', 'response.ids = ["u1"]')
    assert failure.location.line == 5 and str(failure.location) in failure.message
    assert failure.message.endswith(
        'expectation failed: response.count == 1 and response.ids == ["nobody"]'
        ' (expected ["nobody"], found response.ids = ["u1"])'
    )


def test_a_row_that_cannot_start_is_its_own_event(harness, rows_file):
    h = harness(
        "version: 1\nname: r\nfor_each: {key: '{{ row.id }}'}\nsteps:\n"
        "  - identify: {userId: '{{ row.id }}'}\n"
    )
    data = rows_file([{"id": "u1"}, {"name": "no id"}, {"id": "u3"}])
    summary = h.run(data=data)
    assert summary.failed_rows == [2] and summary.counts["failed"] == 1
    [row_failed] = [e for e in h.events if isinstance(e, RowFailed)]
    assert row_failed.row_number == 2 and row_failed.failure.row == 2
    assert row_failed.failure.kind == TEMPLATE and "'id'" in row_failed.error
    assert all(e.row_number != 2 for e in h.steps)  # no step pretends to have failed
    finished = [e for e in h.events if isinstance(e, RowFinished)]
    assert [(e.row_number, e.status) for e in finished] == [(1, "ok"), (2, "failed"), (3, "ok")]
    assert [c.body["userId"] for c in h.calls] == ["u1", "u3"]


def test_a_data_file_breaking_mid_run_is_a_run_error(harness, rows_file):
    h = harness("version: 1\nname: d\nsteps:\n  - identify: {userId: '{{ row.id }}'}\n")
    data = rows_file([{"id": f"u{n}"} for n in range(1, 4)])

    def break_the_file(_run):  # checked whole before the run, then broken under it
        data.write_text('{"id": "u1"}\n{"id": "u2"}\n{"id": \n', encoding="utf-8")

    summary = h.run(data=data, before_run=break_the_file)
    assert summary.interrupted and summary.exit_code == 1 and summary.counts["failed"] == 1
    [error] = [e for e in h.events if isinstance(e, RunError)]
    assert error.failure.kind == "data" and error.failure.row == 3
    assert error.error.startswith(f"{data}:3:") and "invalid JSON" in error.error
    assert [c.body["userId"] for c in h.calls] == ["u1", "u2"]
    assert not any(isinstance(e, StepFinished) and e.status == "failed" for e in h.events)
    assert isinstance(h.events[-1], RunFinished)


def test_a_listener_that_always_raises_stops_nothing(harness, capsys):
    h = harness(FLOW)
    others: list = []

    def broken(event):
        raise RuntimeError("report disk gone")

    summary = h.run(listeners=[broken, others.append])
    assert summary.ok and len(h.paths) == 4
    assert isinstance(others[-1], RunFinished) and others == h.events
    err = capsys.readouterr().err
    assert err.count("report disk gone") == 1  # reported once, not once per event
    assert "test_a_listener_that_always_raises_stops_nothing.<locals>.broken" in err


def test_a_journal_that_fails_in_a_listener_stops_sending(harness, rows_file):
    h = harness(
        "version: 1\nname: j\nsteps:\n  - send_email: {transactional_message_id: 1, to: '{{ row.id }}@example.com', identifiers: {id: '{{ row.id }}'}}\n"
    )
    data = rows_file([{"id": f"u{n}"} for n in range(1, 6)])

    def journal(event):
        if isinstance(event, StepFinished):
            raise JournalError("journal.db", "cannot be written: disk I/O error")

    summary = h.run(listeners=[journal], data=data)
    assert summary.exit_code == 4 and summary.interrupted
    assert "disk I/O error" in summary.journal_error
    assert len(h.calls) == 1  # the first send's outcome could not be recorded: no second send
    assert isinstance(h.events[-1], RunFinished)


@pytest.mark.parametrize("workers", [1, 4])
def test_rows_keep_their_step_order_with_workers(harness, rows_file, workers):
    h = harness(
        "version: 1\nname: o\nfor_each: {key: '{{ row.id }}'}\nsteps:\n"
        "  - identify: {userId: '{{ row.id }}'}\n"
        "  - track: {userId: '{{ row.id }}', event: e}\n"
    )
    data = rows_file([{"id": f"u{n}"} for n in range(1, 21)])
    summary = h.run(data=data, workers=workers)
    assert summary.ok and summary.rows == 20
    for n in range(1, 21):
        mine = [e.step.kind for e in h.steps if e.row_key == f"u{n}"]
        assert mine == ["identify", "track"]


@pytest.mark.parametrize("in_flight", [None, lambda row_key, step_key, facts: None])
def test_a_step_stopped_between_its_check_and_its_send_is_not_recorded(
    harness, rows_file, monkeypatch, in_flight
):
    """Ctrl-C lands after the executor checked for it and before the step's request: the
    request is refused (by the in-flight mark, or the transport), and the step, which sent
    nothing, is left to a resume as if it had not started: not recorded as failed."""
    h = harness(
        "version: 1\nname: s\nsteps:\n  - send_email: {transactional_message_id: 1,"
        " to: '{{ row.id }}@example.com', identifiers: {id: '{{ row.id }}'}}\n"
    )
    data = rows_file([{"id": f"u{n}"} for n in range(1, 4)])
    executors: list[Executor] = []
    made, render = Executor.__init__, StepPipeline.render

    def init(self, *args, **kwargs):
        made(self, *args, **kwargs)
        executors.append(self)

    def render_then_stop(self, step, state, context):
        if state.number == 2:
            executors[0].stop()  # as a signal handler would, mid-step
        return render(self, step, state, context)

    monkeypatch.setattr(Executor, "__init__", init)
    monkeypatch.setattr(StepPipeline, "render", render_then_stop)
    summary = h.run(data=data, in_flight=in_flight)
    assert summary.counts["failed"] == 0
    assert [(e.row_number, e.status) for e in h.steps] == [(1, "ok")]
    assert [c.body["identifiers"]["id"] for c in h.calls] == ["u1"]


def test_a_send_marked_in_flight_then_stopped_before_leaving_is_recorded_failed(
    harness, rows_file, tmp_path, monkeypatch
):
    """The stop lands while the in-flight mark commits: the send never leaves, and its outcome
    must answer the mark, or a resume would take it for a send whose outcome is unknown."""
    h = harness(
        "version: 1\nname: s\nfor_each: {key: '{{ row.id }}'}\nsteps:\n  - send_email:"
        " {transactional_message_id: 1, to: '{{ row.id }}@example.com',"
        " identifiers: {id: '{{ row.id }}'}}\n"
    )
    data = rows_file([{"id": f"u{n}"} for n in range(1, 4)])
    executors: list[Executor] = []
    made = Executor.__init__

    def init(self, *args, **kwargs):
        made(self, *args, **kwargs)
        executors.append(self)

    monkeypatch.setattr(Executor, "__init__", init)
    with Journal(tmp_path / "journal.db") as journal:
        journal.start_run("unit", "flow.yaml", "s", None)
        mark = journal.in_flight_marker("unit")

        def mark_then_stop(row_key, step_key, facts):
            mark(row_key, step_key, facts)  # committed durably...
            if row_key == "u2":
                executors[0].stop()  # ...and the Ctrl-C comes meanwhile

        h.run(listeners=[journal.listener("unit")], data=data, in_flight=mark_then_stop)
        journal.flush()
        assert [c.body["identifiers"]["id"] for c in h.calls] == ["u1"]
        assert journal.unknown_sends("unit") == []  # a resume simply sends it
        assert journal.row_outcomes("unit", "u2")["steps.0"].status == "failed"
        assert "u3" not in {e.row_key for e in h.steps}  # never started: not recorded
