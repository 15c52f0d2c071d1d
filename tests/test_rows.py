"""Data-driven runs: rows from CSV, JSON Lines and JSON arrays; bad rows; missing columns."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import env_for

from cio_flows import RunOptions, run_flow
from cio_flows.cli import main
from cio_flows.events import RowFinished, StepFinished
from cio_flows.rows import DataSource

FLOW = """\
version: 1
name: rows
for_each: {{file: {data}, key: "{{{{ row.id }}}}"}}
steps:
  - identify: {{userId: "{{{{ row.id }}}}", traits: {{email: "{{{{ row.email }}}}", n: "{{{{ row.n }}}}"}}}}
  - track: {{userId: "{{{{ row.id }}}}", event: synced}}
"""


def write_rows(tmp_path, name: str, rows: list[dict]) -> str:
    path = tmp_path / name
    if name.endswith(".csv"):
        lines = ["id,email,n"] + [f"{r['id']},{r['email']},{r['n']}" for r in rows]
        path.write_text("\n".join(lines) + "\n")
    elif name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text(json.dumps(rows))
    return name


ROWS = [{"id": f"u{i}", "email": f"u{i}@example.com", "n": i} for i in range(1, 8)]


@pytest.mark.parametrize("name", ["users.csv", "users.jsonl", "users.json"])
@pytest.mark.parametrize("batch", [True, False], ids=["batched", "row-by-row"])
def test_every_row_is_sent_once(name, batch, tmp_path, write_flow, recording_server):
    flow = write_flow(FLOW.format(data=write_rows(tmp_path, name, ROWS)))
    summary = run_flow(flow, RunOptions(environ=env_for(recording_server.url), batch=batch))
    assert summary.ok and summary.rows == 7
    bodies = [r.body for r in recording_server.requests]
    if batch:
        assert {r.path for r in recording_server.requests} == {"/v1/batch"}
        items = [item for body in bodies for item in body["batch"]]
    else:
        items = bodies
    identified = sorted(i["userId"] for i in items if "traits" in i)
    assert identified == sorted(r["id"] for r in ROWS)
    assert len({i["messageId"] for i in items}) == 14  # distinct, none resent


def test_a_column_the_file_lacks_is_an_error_before_sending(tmp_path, write_flow, recording_server):
    (tmp_path / "users.csv").write_text("id,email\nu1,u1@example.com\n")
    flow = write_flow(FLOW.format(data="users.csv"))
    result = CliRunner().invoke(main, ["run", str(flow)], env=env_for(recording_server.url))
    assert result.exit_code == 2
    assert "uses row.n, a column the data file lacks" in result.output
    assert f"{flow}:5:" in result.output
    assert recording_server.requests == []


def test_an_invalid_row_is_reported_and_skipped(tmp_path, write_flow, recording_server):
    rows = [*ROWS[:3], {"id": "", "email": "x@example.com", "n": 4}, *ROWS[4:]]
    flow = write_flow(FLOW.format(data=write_rows(tmp_path, "users.jsonl", rows)))
    events: list = []
    summary = run_flow(
        flow, RunOptions(environ=env_for(recording_server.url), batch=False), [events.append]
    )
    assert summary.exit_code == 1 and summary.failed_rows == [4]
    failed = [e for e in events if isinstance(e, StepFinished) and e.status == "failed"]
    assert len(failed) == 1
    assert "row 4" in failed[0].error and "userId" in failed[0].error
    assert sum(isinstance(e, RowFinished) and e.status == "ok" for e in events) == 6
    sent = {r.body["userId"] for r in recording_server.requests}
    assert sent == {r["id"] for r in ROWS} - {"u4"}


def test_data_option_replaces_for_each(tmp_path, write_flow, recording_server):
    write_rows(tmp_path, "other.jsonl", ROWS[:2])
    flow = write_flow(FLOW.format(data="missing.csv"))
    summary = run_flow(
        flow, RunOptions(environ=env_for(recording_server.url), data=tmp_path / "other.jsonl")
    )
    assert summary.ok and summary.rows == 2


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\n{"id": \n')
    with pytest.raises(Exception, match=r"bad.jsonl:2:\d+: row 2: invalid JSON"):
        list(DataSource(path).rows())
