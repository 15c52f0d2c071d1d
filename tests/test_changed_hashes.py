"""Issue 25: a journaled run keeps its request hashes for `run --changed` from what it renders
(each row's payload rendered once, not again in a pass before sending), and they are exactly
the values `--changed`'s own pass computes: `when` skips, a row failed at its first step, a
`loop` step (hashed from the step and the row's data), an interrupted run finished by a resume."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorded, RecordingServer, default_answer, env_for

from cio_flows import RunOptions, run_flow
from cio_flows.api import prepare
from cio_flows.run.changed import row_hashes
from cio_flows.run.events import Event, StepFinished
from cio_flows.run.prepare import PreparedRun

ROWS = 40
STEPS = ("upsert", "paid", "seen", "synced")  # names; the journal keys them steps.0 to steps.3
FLOW = """\
version: 1
name: changed_hashes
for_each: {file: rows.csv, key: "{{ row.id }}"}
steps:
  - name: upsert
    identify: {userId: "{{ row.id }}", traits: {plan: "{{ row.plan }}"}}
  - name: paid
    when: row.plan != 'free'
    track: {userId: "{{ row.id }}", event: paid, properties: {plan: "{{ row.plan }}"}}
  - name: seen
    loop: [web, app]
    track: {userId: "{{ row.id }}", event: "seen_{{ item }}"}
  - name: synced
    track: {userId: "{{ row.id }}", event: synced}
"""
REFUSED = "u7"  # its first step is refused in test_a_row_failed_at_its_first_step


def write_flow(folder: Path) -> Path:
    plans = ["free", "pro", "team"]
    lines = ["id,plan"] + [f"u{n},{plans[n % 3]}" for n in range(1, ROWS + 1)]
    (folder / "rows.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    flow = folder / "flow.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    return flow


def options(server: RecordingServer, journal: Path, batch: bool, **more: Any) -> RunOptions:
    return RunOptions(environ=env_for(server.url), journal=journal, batch=batch, workers=1, **more)


def kept(journal: Path, run_id: str) -> dict[tuple[str, str], int]:
    with sqlite3.connect(journal) as db:
        # what --changed hashed before sending, then the run's own, kept with its outcomes
        rows = (
            db.execute(
                "SELECT row_key, step_key, hash FROM request_hashes WHERE run_id = ?", (run_id,)
            ).fetchall()
            + db.execute(
                "SELECT row_key, step_key, request_hash FROM outcomes"
                " WHERE run_id = ? AND request_hash IS NOT NULL",
                (run_id,),
            ).fetchall()
        )
    return {(row_key, step_key): value for row_key, step_key, value in rows}


def expected(flow: Path, given: RunOptions, run_id: str) -> dict[tuple[str, str], int]:
    """What `--changed`'s pass (row_hashes) computes for every row of the run."""
    run = prepare(flow, replace(given, run_id=run_id, resume=None, changed=False))
    found: dict[tuple[str, str], int] = {}
    for row in run.rows():
        assert row is not None
        hashed = row_hashes(run, row)
        assert hashed is not None
        key, steps = hashed
        found.update({(key, step_key): value for step_key, value in steps.items()})
    return found


def sent_users(server: RecordingServer) -> set[str]:
    users = set()
    for request in server.requests:
        body = request.body if isinstance(request.body, dict) else {}
        for item in body.get("batch", [body]):
            if item.get("userId"):
                users.add(item["userId"])
    return users


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "row by row"])
def test_a_journaled_run_renders_each_rows_payload_once(
    tmp_path, recording_server, monkeypatch, batch
):
    flow, journal = write_flow(tmp_path), tmp_path / "journal.db"
    renders: Counter[tuple[str, str]] = Counter()
    render = PreparedRun.rendered

    def counted(run: PreparedRun, step: Any, context: dict[str, Any]) -> Any:
        row = context.get("row") or {}
        renders[(row.get("id", "-"), step.name)] += 1
        return render(run, step, context)

    monkeypatch.setattr(PreparedRun, "rendered", counted)
    summary = run_flow(flow, options(recording_server, journal, batch))
    assert summary.exit_code == 0

    # Every (row, step) the run sends is rendered once: by the run, not by a pass before it.
    # A `when` that is false renders nothing in the run: its hash is taken on the side, once.
    # The loop renders once per item (in the run only: its hash is of the step and the row).
    assert len(renders) == ROWS * len(STEPS)
    for (_, step), count in renders.items():
        assert count == (2 if step == "seen" else 1)
    assert len(kept(journal, summary.run_id)) == ROWS * len(STEPS)


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "row by row"])
def test_a_run_then_changed_leaves_every_row_out_when_skips_included(
    tmp_path, recording_server, batch
):
    flow, journal = write_flow(tmp_path), tmp_path / "journal.db"
    given = options(recording_server, journal, batch)
    first = run_flow(flow, given)
    assert first.exit_code == 0
    assert kept(journal, first.run_id) == expected(flow, given, first.run_id)

    recording_server.requests.clear()
    notes: list[str] = []
    again = run_flow(
        flow,
        replace(given, changed=True),
        listeners=[lambda event: notes.extend(getattr(event, "notes", ()))],
    )
    assert again.exit_code == 0
    assert recording_server.requests == []
    assert f"--changed: {ROWS} row(s) unchanged since run {first.run_id}, left out" in notes


def refuse_one_identify(request: Recorded) -> tuple[int, dict[str, str], Any]:
    """u7's identify is refused (400 alone, or its item of a batch in a 207)."""
    body = request.body if isinstance(request.body, dict) else {}
    if request.path.endswith("/identify") and body.get("userId") == REFUSED:
        return 400, {}, {"error": "refused"}
    for index, item in enumerate(body.get("batch") or []):
        if item.get("type") == "identify" and item.get("userId") == REFUSED:
            return 207, {}, {"errors": [{"batch_index": index, "reason": "refused"}]}
    return default_answer(request)


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "row by row"])
def test_a_row_failed_at_its_first_step_has_every_steps_hash(tmp_path, recording_server, batch):
    flow, journal = write_flow(tmp_path), tmp_path / "journal.db"
    recording_server.handler = refuse_one_identify
    given = options(recording_server, journal, batch)
    failed = run_flow(flow, given)
    assert failed.exit_code == 1 and failed.failed_rows == [7]
    hashes = kept(journal, failed.run_id)
    assert {step for row, step in hashes if row == REFUSED} == {
        f"steps.{n}" for n in range(len(STEPS))
    }
    assert hashes == expected(flow, given, failed.run_id)


class InterruptAt:
    """Ctrl-C as the run records its `count`th outcome of step `step` (after the journal)."""

    def __init__(self, step: str, count: int) -> None:
        self.step, self.left = step, count

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepFinished) and event.step.name == self.step:
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "row by row"])
def test_an_interrupted_run_resumed_to_pass_leaves_every_row_out_of_changed(
    tmp_path, recording_server, batch
):
    flow, journal = write_flow(tmp_path), tmp_path / "journal.db"
    given = options(recording_server, journal, batch)
    # batched: a batch's outcomes reach the journal together, before this listener hears them
    cut = run_flow(flow, given, listeners=[InterruptAt("seen" if batch else "upsert", 10)])
    assert cut.interrupted
    partial = kept(journal, cut.run_id)
    assert 0 < len(partial) < ROWS * len(STEPS)  # only what ran: no row hashed before sending

    resumed = run_flow(flow, replace(given, resume=cut.run_id))
    assert resumed.exit_code == 0 and resumed.run_id == cut.run_id
    complete = kept(journal, cut.run_id)
    assert complete == expected(flow, given, cut.run_id)
    assert {key: complete[key] for key in partial} == partial

    recording_server.requests.clear()
    again = run_flow(flow, replace(given, changed=True))
    assert again.exit_code == 0
    assert sent_users(recording_server) == set()
    assert recording_server.requests == []
