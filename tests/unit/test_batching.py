"""Batched chunks, in memory: the same outcomes as row by row, fewer requests."""

from __future__ import annotations

from functools import partial

import pytest

from cio_flows.errors import JournalError
from cio_flows.run.events import HTTP, PAYLOAD, TRANSPORT, StepFinished
from cio_flows.run.executor import PreviousOutcome
from cio_flows.run.journal import Journal
from cio_flows.wire.kinds.batching import MAX_ITEM_BYTES

from .conftest import answer, path_of

FLOW = """\
version: 1
name: batched
for_each: {key: "{{ row.id }}"}
steps:
  - name: create
    identify: {userId: "{{ row.id }}", traits: {plan: "{{ row.plan }}"}}
  - name: lookup
    get_person: {id: "{{ row.id }}"}
    when: row.plan == "pro"
  - name: welcome
    track: {userId: "{{ row.id }}", event: welcome}
finally:
  - name: bye
    track: {userId: "{{ row.id }}", event: bye}
"""

ROWS = [{"id": f"u{n}", "plan": "pro" if n % 3 == 0 else "free"} for n in range(1, 13)]


def outcomes(h) -> set[tuple]:
    """What each (row, step) came to; "batched" is the only detail a batch adds."""
    return {
        (e.row_key, e.step.name, e.status, None if e.detail == "batched" else e.detail, e.error)
        for e in h.steps
    }


def delivered(h) -> set[tuple]:
    """(type, userId, event, messageId) of every identify/track, alone or in a batch."""
    items = []
    for call in h.calls:
        path = path_of(call.url)
        if path == "/v1/batch":
            items += call.body["batch"]
        elif path in ("/v1/identify", "/v1/track"):
            items.append({"type": path.rsplit("/", 1)[1], **call.body})
    return {(i["type"], i["userId"], i.get("event"), i["messageId"]) for i in items}


def test_batched_chunks_give_the_same_outcomes_as_rows(harness, rows_file):
    data = rows_file(ROWS)
    alone, batched = harness(FLOW), harness(FLOW)
    assert alone.run(data=data).ok
    assert batched.run(data=data, batch=True, chunk_size=5).ok
    assert outcomes(batched) == outcomes(alone)
    assert delivered(batched) == delivered(alone) and len(delivered(alone)) == 36
    assert {path_of(c.url) for c in batched.calls} == {"/v1/batch", "/v1/customers/u3/attributes",
        "/v1/customers/u6/attributes", "/v1/customers/u9/attributes",
        "/v1/customers/u12/attributes"}  # fmt: skip
    assert len(batched.calls) == 3 * 3 + 4  # 3 chunks x 3 batched steps, 4 lookups alone
    skipped = {e.row_key for e in batched.steps if e.detail == "when is false"}
    assert skipped == {r["id"] for r in ROWS if r["plan"] == "free"}


def test_a_row_refused_in_a_batch_fails_alone(harness, rows_file):
    h = harness(FLOW)

    def refuse_u2(method, url, headers, body):
        if path_of(url) == "/v1/batch" and body["batch"][0]["type"] == "identify":
            index = next(i for i, item in enumerate(body["batch"]) if item["userId"] == "u2")
            return 207, {}, {"errors": [{"batch_index": index, "reason": "invalid", "field": "x"}]}
        return answer(method, url, headers, body)

    h.handler = refuse_u2
    summary = h.run(data=rows_file(ROWS[:4]), batch=True)
    assert summary.failed_rows == [2]
    u2 = [(e.step.name, e.status) for e in h.steps if e.row_key == "u2"]
    assert u2 == [("create", "failed"), ("lookup", "skipped"), ("welcome", "skipped"),
                  ("bye", "ok")]  # fmt: skip
    failure = next(e.failure for e in h.steps if e.status == "failed")
    assert failure.kind == HTTP and failure.found == "invalid: x" and failure.row == 2
    assert "rejected in batch: invalid: x" in failure.message


@pytest.mark.parametrize(("status", "kind"), [(400, HTTP), (None, TRANSPORT)])
def test_a_batch_that_fails_fails_each_of_its_rows(harness, rows_file, status, kind):
    import requests

    h = harness(FLOW)

    def fail_batches(method, url, headers, body):
        if path_of(url) != "/v1/batch":
            return answer(method, url, headers, body)
        if status is None:
            raise requests.ConnectionError("connection refused")
        return status, {}, {"errors": [{"message": "no"}]}

    h.handler = fail_batches
    summary = h.run(data=rows_file(ROWS[:3]), batch=True)
    assert summary.failed_rows == [1, 2, 3]
    creates = [e for e in h.steps if e.step.name == "create"]
    assert [e.status for e in creates] == ["failed"] * 3
    assert all(e.failure.kind == kind and e.error.startswith("batch: ") for e in creates)
    assert all(e.failure.outcome == "failed" for e in creates)  # a batch is safe to resend


def test_an_item_over_the_size_limit_fails_with_its_size(harness, rows_file):
    h = harness(FLOW)
    rows = [ROWS[0], {"id": "u2", "plan": "x" * (MAX_ITEM_BYTES + 10)}]
    summary = h.run(data=rows_file(rows), batch=True)
    assert summary.failed_rows == [2]
    failure = next(e.failure for e in h.steps if e.status == "failed")
    assert failure.kind == PAYLOAD and failure.expected == f"at most {MAX_ITEM_BYTES} bytes"
    assert failure.found.endswith(" bytes") and "Customer.io takes at most" in failure.message


def test_resume_in_batches_sends_only_what_did_not_succeed(harness, rows_file):
    h = harness(FLOW)
    done = {"steps.0": PreviousOutcome("ok"), "steps.2": PreviousOutcome("ok")}
    summary = h.run(
        data=rows_file(ROWS[:4]),
        batch=True,
        previous=lambda key: done if key in ("u1", "u2") else {},
    )
    assert summary.ok
    sent = delivered(h)
    assert {(t, u) for t, u, e, _ in sent if e != "bye"} == {
        ("identify", "u3"), ("identify", "u4"), ("track", "u3"), ("track", "u4")
    }  # fmt: skip
    replayed = [e for e in h.steps if e.detail == "done before"]
    assert {(e.row_key, e.step.name) for e in replayed} == {
        ("u1", "create"), ("u1", "welcome"), ("u2", "create"), ("u2", "welcome")
    }  # fmt: skip


def test_a_journal_failure_in_a_chunk_sends_no_further_batch(harness, rows_file):
    h = harness(FLOW)

    def journal(event):
        if isinstance(event, StepFinished) and event.row_key == "u1":
            raise JournalError("journal.db", "cannot be written: disk I/O error")

    summary = h.run(listeners=[journal], data=rows_file(ROWS[:6]), batch=True)
    assert summary.exit_code == 4
    assert [path_of(c.url) for c in h.calls] == ["/v1/batch"]  # the first batch, nothing after
    # The batch on the wire is answered for, row by row (each outcome heard, the journal's
    # refused): nothing is sent after it, and what was not recorded is left for a resume.
    assert len(h.steps) == 6


@pytest.mark.parametrize("left_out", [set(), {2, 7}], ids=["every row", "rows left out"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_workers_send_the_chunks_they_claim_and_together_every_row_once(
    harness, rows_file, tmp_path, fmt, left_out
):
    """A worker process (run/processes.py) sends the chunks it claims, and only those; here
    worker i of 2 claims chunks i, i + 2, ... (in a run, whichever has a thread free). Chunks
    are counted over the rows the run takes (CSV rows of others' chunks are never built)."""
    if fmt == "csv":
        data = tmp_path / "rows.csv"
        data.write_text("id,plan\n" + "".join(f"{r['id']},{r['plan']}\n" for r in ROWS))
    else:
        data = rows_file(ROWS)

    def leave_out(run):
        if left_out:
            run.leave_out(left_out, "left out")

    alone = harness(FLOW)
    assert alone.run(data=data, batch=True, chunk_size=5, before_run=leave_out).ok
    rows_of: list[set[str]] = []
    together: set[tuple] = set()
    for mine in range(2):
        worker = harness(FLOW)
        claim = partial(next, iter(range(mine, 1_000, 2)))
        run = worker.run(data=data, batch=True, chunk_size=5, claim=claim, before_run=leave_out)
        assert run.ok
        rows_of.append({e.row_key for e in worker.steps})
        together |= delivered(worker)
    keys = [r["id"] for n, r in enumerate(ROWS, start=1) if n not in left_out]
    chunks = [set(keys[i : i + 5]) for i in range(0, len(keys), 5)]
    assert rows_of == [set().union(*chunks[0::2]), set().union(*chunks[1::2])]
    assert together == delivered(alone)


@pytest.mark.parametrize("batch", [False, True], ids=["row by row", "batched"])
def test_an_outcome_the_journal_cannot_take_loses_only_itself(harness, rows_file, tmp_path, batch):
    """Row 3 saves a value json cannot write (the steps scope holds itself): its outcome is lost
    and said so; the rest of its batch is recorded, as each would be alone."""
    h = harness(
        "version: 1\nname: s\nfor_each: {key: '{{ row.id }}'}\nsteps:\n  - name: ident\n"
        "    identify: {userId: '{{ row.id }}'}\n"
        '    save: {name: me, value: "steps if row.bad else 1"}\n'
    )
    data = rows_file([{"id": f"u{n}", "bad": n == 3} for n in range(1, 6)])
    with Journal(tmp_path / "journal.db") as journal:
        journal.start_run("unit", "flow.yaml", "s", None)
        summary = h.run(listeners=[journal.listener("unit")], data=data, batch=batch)
        journal.flush()
        kept = [row for row in (f"u{n}" for n in range(1, 6)) if journal.row_outcomes("unit", row)]
    assert summary.counts["ok"] == 5
    assert kept == ["u1", "u2", "u4", "u5"]
