"""Issue 23 (10): `runs show RUN_ID`, `runs prune --older-than DAYS`, one default journal."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorded, default_answer, env_for
from support import cli

FLOW = """version: 1
name: nightly_runs
for_each:
  file: rows.csv
  key: "{{ row.id }}"
steps:
  - name: upsert the person
    identify:
      userId: "{{ row.id }}"
      traits: {vip: "{{ row.vip }}"}
  - name: the vip event
    when: "{{ row.vip == 'yes' }}"
    track: {userId: "{{ row.id }}", event: vip}
"""


def write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["id,vip"] + [f"u{n},{'yes' if n % 5 == 0 else 'no'}" for n in range(1, 21)]
    (folder / "rows.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "flow.yaml").write_text(FLOW, encoding="utf-8")
    return folder / "flow.yaml"


def refuse_u10(request: Recorded) -> tuple[int, dict[str, str], Any]:
    body = request.body if isinstance(request.body, dict) else {}
    if body.get("event") == "vip" and body.get("userId") == "u10":
        return 400, {}, {"errors": [{"message": "no vip for u10"}]}
    return default_answer(request)


def run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # a real cio-flows process
def test_runs_show_names_the_steps_their_counts_and_failures(tmp_path, recording_server):
    recording_server.handler = refuse_u10
    flow = write(tmp_path / "project")
    env = {**os.environ, **env_for(recording_server.url)}
    done = run(env, "run", str(flow), "--no-batch", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    run_id = re.search(r"run id: (\S+)", done.stdout).group(1)
    shown = run(env, "runs", "show", run_id, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert f"run {run_id}: failed" in text
    assert "flow: nightly_runs" in text and "rows.csv (sha256 " in text
    assert "upsert the person (steps.0): 20 ok" in text
    assert "the vip event (steps.1): 3 ok, 1 failed, 16 skipped" in text
    assert "failures: 1" in text and "row u10, the vip event: failed" in text
    assert "track-secret-abcdef" not in text and "app-secret-abcdef" not in text
    missing = run(env, "runs", "show", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr


@pytest.mark.slow  # a real cio-flows process
def test_the_default_journal_is_found_from_any_folder(tmp_path, recording_server):
    flow = write(tmp_path / "project")
    env = {**os.environ, **env_for(recording_server.url), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("CIO_FLOWS_JOURNAL")  # the default location, not the test's
    done = run(env, "run", str(flow), cwd=tmp_path / "project")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = re.search(r"run id: (\S+)", done.stdout).group(1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = run(env, "runs", cwd=elsewhere)
    assert listed.stdout.startswith(run_id), listed.stdout + listed.stderr
    assert (tmp_path / "data" / "cio-flows" / "journal.db").is_file()
    assert not (tmp_path / "project" / ".cio-flows").exists()
    # CIO_FLOWS_JOURNAL still wins
    other = run({**env, "CIO_FLOWS_JOURNAL": str(tmp_path / "other.db")}, "runs", cwd=elsewhere)
    assert other.stdout.strip() == "no runs yet"


@pytest.mark.slow  # a real cio-flows process
def test_prune_deletes_old_runs_and_keeps_recent_ones_and_once_keys(tmp_path, recording_server):
    flow = write(tmp_path / "project")
    env = {**os.environ, **env_for(recording_server.url)}
    ids = []
    for _ in range(2):
        done = run(env, "run", str(flow), cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        ids.append(re.search(r"run id: (\S+)", done.stdout).group(1))
    journal = Path(env["CIO_FLOWS_JOURNAL"])
    with sqlite3.connect(journal) as db:  # the first run was 40 days ago
        db.execute(
            "UPDATE runs SET started_at = ? WHERE run_id = ?", (time.time() - 40 * 86400, ids[0])
        )
        db.execute("INSERT INTO once_keys VALUES ('welcome:u1', ?, 'u1', 'steps.0', 0)", (ids[0],))
    pruned = run(env, "runs", "prune", "--older-than", "30", cwd=tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 1 run(s)" in pruned.stdout
    with sqlite3.connect(journal) as db:
        assert [r[0] for r in db.execute("SELECT run_id FROM runs")] == [ids[1]]
        left = db.execute("SELECT COUNT(*) FROM outcomes WHERE run_id = ?", (ids[0],)).fetchone()
        assert left == (0,)
        assert db.execute("SELECT COUNT(*) FROM once_keys").fetchone() == (1,)
    listed = run(env, "runs", cwd=tmp_path)
    assert ids[1] in listed.stdout and ids[0] not in listed.stdout
