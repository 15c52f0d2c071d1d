"""Issue 23 (6, 3): duplicate keys named before sending, `on_duplicate_key`, `--rows A:B`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import env_for

from cio_flows.cli import main

FLOW = """version: 1
name: dup_sync
for_each:
  file: rows.csv
  key: "{{{{ row.id }}}}"{extra}
steps:
  - name: upsert
    identify:
      userId: "{{{{ row.id }}}}"
      traits: {{plan: "{{{{ row.plan }}}}"}}
"""
# u1 on lines 2, 4 and 6; u2 on lines 3 and 7
ROWS = "id,plan\nu1,a\nu2,a\nu1,b\nu3,a\nu1,c\nu2,b\n"


def write(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "rows.csv").write_text(ROWS, encoding="utf-8")
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW.format(extra=extra), encoding="utf-8")
    return flow


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env or {}, catch_exceptions=False)


def sent(server) -> list[tuple[str, str]]:
    """(userId, plan) of every identify that reached the server, in any order."""
    found = []
    for request in server.requests:
        body = request.body if isinstance(request.body, dict) else {}
        for item in body.get("batch", [body]):
            if item.get("type", "identify") == "identify" and "traits" in item:
                found.append((item.get("userId"), item["traits"].get("plan")))
    return sorted(found)


def test_every_duplicate_is_named_and_nothing_is_sent(tmp_path, recording_server):
    flow = write(tmp_path)
    result = invoke("run", str(flow), env=env_for(recording_server.url))
    assert result.exit_code == 2, result.output
    assert "duplicate for_each key: line 4 has the same key as line 2" in result.output
    assert "key 'u1' on lines 2, 4 and 6" in result.output
    assert "key 'u2' on lines 3 and 7" in result.output
    assert recording_server.requests == []


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("first", [("u1", "a"), ("u2", "a"), ("u3", "a")]),
        ("last", [("u1", "c"), ("u2", "b"), ("u3", "a")]),
    ],
)
def test_on_duplicate_key_runs_one_row_per_key(tmp_path, recording_server, policy, expected):
    flow = write(tmp_path, f"\n  on_duplicate_key: {policy}")
    result = invoke("run", str(flow), "--no-batch", env=env_for(recording_server.url))
    assert result.exit_code == 0, result.output
    assert sent(recording_server) == expected
    notes = [line for line in result.output.splitlines() if "left out" in line]
    assert len(notes) == 3  # every row left out is named before sending
    assert result.output.index("left out") < result.output.index("summary:")


def test_on_duplicate_key_is_checked_by_the_schema(tmp_path):
    flow = write(tmp_path, "\n  on_duplicate_key: newest")
    result = invoke("validate", str(flow))
    assert result.exit_code == 2
    assert "on_duplicate_key" in result.output


# --- --rows A:B ----------------------------------------------------------------------------------

SLICE_FLOW = """version: 1
name: canary
for_each:
  file: rows.csv
  key: "{{ row.id }}"
steps:
  - name: upsert
    identify:
      userId: "{{ row.id }}"
      traits: {n: "{{ row.n }}"}
"""


def write_numbered(tmp_path: Path, rows: int = 250) -> Path:
    lines = ["id,n"] + [f"u{n},{n}" for n in range(1, rows + 1)]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    flow = tmp_path / "canary.yaml"
    flow.write_text(SLICE_FLOW, encoding="utf-8")
    return flow


def sent_users(server) -> list[str]:
    return sorted((user for user, _ in sent(server)), key=lambda user: int(user[1:]))


def test_rows_sends_exactly_the_slice(tmp_path, recording_server):
    flow = write_numbered(tmp_path)
    result = invoke("run", str(flow), "--rows", "1:100", env=env_for(recording_server.url))
    assert result.exit_code == 0, result.output
    assert sent_users(recording_server) == [f"u{n}" for n in range(1, 101)]
    assert "over 100 row(s)" in result.output


@pytest.mark.parametrize(
    ("given", "first", "last"), [("240:", 240, 250), (":3", 1, 3), ("7:7", 7, 7)]
)
def test_open_ended_slices(tmp_path, recording_server, given, first, last):
    flow = write_numbered(tmp_path)
    result = invoke("run", str(flow), "--rows", given, env=env_for(recording_server.url))
    assert result.exit_code == 0, result.output
    assert sent_users(recording_server) == [f"u{n}" for n in range(first, last + 1)]


def test_plan_shows_only_the_slice(tmp_path):
    flow = write_numbered(tmp_path)
    result = invoke("plan", str(flow), "--rows", "11:20", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    planned = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    (batch,) = planned  # one batch call: rows 11 to 20, ten items
    assert (batch["rows"], batch["items"]) == ([11, 20], 10)


@pytest.mark.parametrize("given", ["0:5", "5:2", "x", "3", "a:b"])
def test_bad_slices_are_refused(tmp_path, recording_server, given):
    flow = write_numbered(tmp_path)
    result = invoke("run", str(flow), "--rows", given, env=env_for(recording_server.url))
    assert result.exit_code == 2
    assert "--rows" in result.output
    assert recording_server.requests == []
