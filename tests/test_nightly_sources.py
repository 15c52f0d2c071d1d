"""Issue 23 (5): rows from Parquet, from a database through a SQLAlchemy URL, and from a DuckDB
query over a CSV file send what the CSV sends."""

from __future__ import annotations

import csv
import sqlite3
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import env_for

from cio_flows.cli import main

FLOW = """version: 1
name: sources
for_each:
  file: users.csv
  key: "{{ row.id }}"
steps:
  - name: upsert
    identify:
      userId: "{{ row.id }}"
      traits: {email: "{{ row.email }}", plan: "{{ row.plan }}"}
"""
ROWS = [
    {"id": f"u{n:04d}", "email": f"u{n}@example.com", "plan": "pro" if n % 3 else "free"}
    for n in range(1, 2501)
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    with (tmp_path / "users.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.DictWriter(handle, ["id", "email", "plan"])
        out.writeheader()
        out.writerows(ROWS)
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table, tmp_path / "users.parquet", row_group_size=1000)  # three row groups
    with sqlite3.connect(tmp_path / "users.db") as db:
        db.execute("CREATE TABLE users (id TEXT, email TEXT, plan TEXT)")
        db.executemany("INSERT INTO users VALUES (:id, :email, :plan)", ROWS)
    (tmp_path / "flow.yaml").write_text(FLOW, encoding="utf-8")
    return tmp_path


def sent(server) -> list[tuple[str, str, str]]:
    found = []
    for request in server.requests:
        body = request.body if isinstance(request.body, dict) else {}
        for item in body.get("batch", [body]):
            traits = item.get("traits") or item.get("attributes") or {}
            user = item.get("userId") or (item.get("identifiers") or {}).get("id")
            found.append((user, traits.get("email"), traits.get("plan")))
    return sorted(found)


def invoke(server, *args: str):
    server.requests.clear()
    return CliRunner().invoke(main, ["run", *args], env=env_for(server.url))


def test_parquet_sqlite_and_duckdb_send_what_the_csv_sends(project, recording_server):
    flow = str(project / "flow.yaml")
    from_csv = invoke(recording_server, flow)
    assert from_csv.exit_code == 0, from_csv.output
    expected = sent(recording_server)
    assert len(expected) == len(ROWS)
    assert expected == sorted((r["id"], r["email"], r["plan"]) for r in ROWS)

    parquet = invoke(recording_server, flow, "--data", str(project / "users.parquet"))
    assert parquet.exit_code == 0, parquet.output
    assert sent(recording_server) == expected

    url = f"sqlite:///{project / 'users.db'}"
    sqlite = invoke(
        recording_server, flow, "--query", "SELECT id, email, plan FROM users", "--database", url
    )
    assert sqlite.exit_code == 0, sqlite.output
    assert sent(recording_server) == expected

    query = f"SELECT * FROM read_csv('{project / 'users.csv'}', all_varchar = true)"
    duck = invoke(recording_server, flow, "--query", query)
    assert duck.exit_code == 0, duck.output
    assert sent(recording_server) == expected


def test_for_each_query_reads_files_next_to_the_flow(project, recording_server):
    flow = project / "query_flow.yaml"
    flow.write_text(
        FLOW.replace(
            "  file: users.csv\n",
            "  query: SELECT * FROM 'users.parquet' WHERE plan = 'free'\n",
        ),
        encoding="utf-8",
    )
    result = invoke(recording_server, str(flow), "--rows", "1:10")
    assert result.exit_code == 0, result.output
    users = [user for user, _, _ in sent(recording_server)]
    assert users == [f"u{n:04d}" for n in range(3, 31, 3)]


def test_sources_get_the_checks_of_files(project, recording_server, monkeypatch):
    monkeypatch.chdir(project)  # --query reads files from the current folder
    flow = str(project / "flow.yaml")
    twice = "SELECT * FROM 'users.csv' UNION ALL SELECT * FROM 'users.csv' LIMIT 2600"
    dup = invoke(recording_server, flow, "--query", twice)
    assert dup.exit_code == 2 and "duplicate for_each key" in dup.output
    missing = invoke(recording_server, flow, "--query", "SELECT id FROM 'users.csv'")
    assert missing.exit_code == 2 and "row.email" in missing.output
    bad = invoke(recording_server, flow, "--query", "SELEC nope")
    assert bad.exit_code == 2 and "the query failed" in bad.output
    secret = "sqlite+pysqlite://admin:hunter2-secret@/" + str(project / "nowhere" / "x.db")
    refused = invoke(recording_server, flow, "--query", "SELECT 1", "--database", secret)
    assert refused.exit_code == 2 and "hunter2-secret" not in refused.output
    remote = "postgresql://admin:hunter2-secret@127.0.0.1:1/users"  # no driver, or no server
    unreachable = invoke(recording_server, flow, "--query", "SELECT 1", "--database", remote)
    assert unreachable.exit_code == 2, unreachable.output
    assert "hunter2-secret" not in unreachable.output and "admin:***@" in unreachable.output
    assert recording_server.requests == []


def test_a_missing_sql_extra_is_named(project, recording_server, monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # as if not installed
    url = f"sqlite:///{project / 'users.db'}"
    result = invoke(
        recording_server, str(project / "flow.yaml"), "--query", "SELECT 1", "--database", url
    )
    assert result.exit_code == 2
    assert "pip install 'cio-flows[sql]'" in result.output
    assert recording_server.requests == []


@pytest.mark.slow  # retries 503s until they give up
def test_a_resume_reads_the_query_again(project, recording_server, monkeypatch):
    """An interrupted --query run resumes without --query: the journal kept the query (and a
    URL without a password); rows that succeeded are not sent again."""
    import re

    url = f"sqlite:///{project / 'users.db'}"
    flow = str(project / "flow.yaml")
    calls = {"n": 0}

    def fail_after_some(request):
        calls["n"] += 1
        return (503, {}, {"error": "down"}) if calls["n"] > 1 else default_answer(request)

    from conftest import default_answer

    recording_server.handler = fail_after_some
    first = invoke(
        recording_server, flow, "--query", "SELECT * FROM users", "--database", url,
        "--timeout", "2", "--workers", "1",
    )  # fmt: skip
    assert first.exit_code != 0
    run_id = re.search(r"run id: (\S+)", first.output).group(1)
    first_call = recording_server.requests[0].body  # the one answered 200
    done_before = {item.get("userId") or item["identifiers"]["id"] for item in first_call["batch"]}
    recording_server.handler = default_answer
    again = invoke(recording_server, flow, "--resume", run_id)
    assert again.exit_code == 0, again.output
    resent = {user for user, _, _ in sent(recording_server)}
    assert done_before and resent == {r["id"] for r in ROWS} - done_before
