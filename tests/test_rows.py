"""Data-driven runs: rows from CSV, JSON Lines and JSON arrays; bad rows; missing columns."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import env_for

from cio_flows import RunOptions, run_flow
from cio_flows.cli import main
from cio_flows.run.events import RowFinished, StepFinished
from cio_flows.run.rows import DataSource

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


# --- the pre-pass: DataSource.check() ------------------------------------------------------


def by_id(row) -> str:
    return str(row.data["id"])


@pytest.mark.parametrize("name", ["users.csv", "users.jsonl", "users.json"])
def test_check_counts_the_rows_of_a_good_file(name, tmp_path):
    write_rows(tmp_path, name, ROWS)
    assert DataSource(tmp_path / name).check(by_id) == 7


@pytest.mark.parametrize("name", ["users.csv", "users.jsonl", "users.json"])
def test_rows_left_out_by_number_are_the_only_ones_missing(name, tmp_path):
    write_rows(tmp_path, name, ROWS)
    every = list(DataSource(tmp_path / name).rows())
    odd = list(DataSource(tmp_path / name).rows(skip=lambda number: number % 2 == 0))
    assert odd == [row for row in every if row.number % 2] and len(odd) == 4


def test_hash_collisions_are_not_reported_as_duplicates(tmp_path, monkeypatch):
    from cio_flows.run import rows

    monkeypatch.setattr(rows, "_key_hash", lambda key: 7)  # every key collides
    write_rows(tmp_path, "users.jsonl", ROWS)
    assert DataSource(tmp_path / "users.jsonl").check(by_id) == 7
    with (tmp_path / "users.jsonl").open("a") as handle:
        handle.write(json.dumps(ROWS[2]) + "\n")
    with pytest.raises(Exception, match=r"users.jsonl:8:1: row 8: .* same key as line 3"):
        DataSource(tmp_path / "users.jsonl").check(by_id)


def test_rows_whose_key_cannot_be_rendered_are_left_to_the_run(tmp_path):
    write_rows(tmp_path, "users.csv", ROWS)
    assert DataSource(tmp_path / "users.csv").check(lambda row: None) == 7


def test_json_array_rows_are_located_on_the_line_they_start(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps(ROWS[:3], indent=2))  # 5 lines a row, after "["
    located = list(DataSource(path)._json_located())
    assert [(r.number, r.line) for r in located] == [(1, 2), (2, 7), (3, 12)]
    assert [r.data for r in located] == [r.data for r in DataSource(path).rows()]


def test_a_utf8_bom_is_not_part_of_the_first_column(tmp_path):
    for name, text in [("bom.csv", "id,email\nu1,a\n"), ("bom.json", '[{"id": "u1"}]')]:
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert [r.data["id"] for r in DataSource(tmp_path / name).rows()] == ["u1"]


def test_a_quoted_cell_over_two_lines_is_one_row(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text('id,note\nu1,"two\nlines"\nu2,x\n')
    rows = list(DataSource(path).rows())
    assert [(r.number, r.line, r.data["note"]) for r in rows] == [(1, 2, "two\nlines"), (2, 4, "x")]


def test_the_key_check_keeps_8_bytes_a_row(tmp_path):
    import tracemalloc

    path = tmp_path / "users.csv"
    count = 50_000
    path.write_text("id\n" + "".join(f"user-{i:08d}\n" for i in range(count)))
    tracemalloc.start()
    try:
        assert DataSource(path).check(by_id) == count
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # keeping the keys themselves would take ~5 MB here; 8 bytes a row is 0.4 MB
    assert peak < 2_000_000, peak
