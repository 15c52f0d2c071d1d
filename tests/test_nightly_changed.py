"""Issue 23 (4): `run --changed` sends only the rows whose rendered requests differ from the
last passed run of the flow; the journal keeps a hash per row key and step."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import env_for
from support import cli

FLOW = """version: 1
name: nightly_changed
for_each:
  file: rows.csv
  key: "{{ row.id }}"
steps:
  - name: upsert
    identify:
      userId: "{{ row.id }}"
      traits: {plan: "{{ row.plan }}"}
  - name: synced
    track: {userId: "{{ row.id }}", event: synced, properties: {plan: "{{ row.plan }}"}}
"""
ROWS = 300


def write_rows(folder: Path, plans: dict[int, str] | None = None, extra: int = 0) -> None:
    plans = plans or {}
    lines = ["id,plan"] + [f"u{n},{plans.get(n, 'free')}" for n in range(1, ROWS + extra + 1)]
    (folder / "rows.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def users_sent(server) -> set[str]:
    found = set()
    for request in server.requests:
        body = request.body if isinstance(request.body, dict) else {}
        for item in body.get("batch", [body]):
            user = item.get("userId") or (item.get("identifiers") or {}).get("id")
            if user:
                found.add(user)
    return found


def run(flow: Path, server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_for(server.url)}
    server.requests.clear()
    return subprocess.run(
        cli("run", str(flow), *args), env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_changed_sends_nothing_after_a_full_run_then_exactly_the_changed_rows(
    tmp_path, recording_server
):
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    write_rows(tmp_path)
    full = run(flow, recording_server)
    assert full.returncode == 0, full.stdout + full.stderr
    assert len(users_sent(recording_server)) == ROWS

    again = run(flow, recording_server, "--changed")
    assert again.returncode == 0, again.stdout + again.stderr
    assert users_sent(recording_server) == set()
    assert f"{ROWS} row(s) unchanged since run" in again.stdout

    changed = {7: "pro", 42: "pro", 99: "team", 100: "pro", 150: "pro"}
    changed.update({n: "team" for n in (201, 202, 250, 299, 300)})
    write_rows(tmp_path, changed)
    planned = subprocess.run(
        cli("plan", str(flow), "--changed", "--format", "jsonl"),
        env={**os.environ, **env_for(recording_server.url)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert planned.returncode == 0, planned.stderr
    assert f"{ROWS - len(changed)} row(s) unchanged" in planned.stderr
    assert sum(line.count('"userId"') for line in planned.stdout.splitlines()) >= len(changed)
    ten = run(flow, recording_server, "--changed")
    assert ten.returncode == 0, ten.stdout + ten.stderr
    assert users_sent(recording_server) == {f"u{n}" for n in changed}

    # the last passed run is now the --changed one: it carried every row's hash forward
    write_rows(tmp_path, changed, extra=3)  # three new keys
    new = run(flow, recording_server, "--changed")
    assert new.returncode == 0, new.stdout + new.stderr
    assert users_sent(recording_server) == {"u301", "u302", "u303"}

    journal = Path(os.environ["CIO_FLOWS_JOURNAL"])
    with sqlite3.connect(journal) as db:
        per_run = db.execute(  # --changed's hashes, and a run's own with its outcomes
            "SELECT COUNT(*) FROM (SELECT run_id, row_key, step_key FROM request_hashes UNION"
            " SELECT run_id, row_key, step_key FROM outcomes WHERE request_hash IS NOT NULL)"
            " GROUP BY run_id"
        ).fetchall()
    # As a multiset: run ids sort by the second they started, then by random digits.
    assert sorted(n for (n,) in per_run) == [ROWS * 2, ROWS * 2, ROWS * 2, (ROWS + 3) * 2]


@pytest.mark.slow  # a real cio-flows process
def test_changed_after_a_failed_run_compares_with_the_last_passed_one(tmp_path, recording_server):
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    write_rows(tmp_path)
    assert run(flow, recording_server).returncode == 0
    write_rows(tmp_path, {5: "pro"})
    recording_server.handler = lambda request: (500, {}, {"error": "down"})
    failed = run(flow, recording_server, "--timeout", "5")
    assert failed.returncode != 0
    from conftest import default_answer

    recording_server.handler = default_answer
    retry = run(flow, recording_server, "--changed")
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert users_sent(recording_server) == {"u5"}  # not compared with the failed run
