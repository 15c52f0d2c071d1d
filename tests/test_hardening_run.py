"""Run-side hardening: a damaged journal, report paths that cannot be written, a second signal.

Each case runs the real command line against a real local server and checks what was sent.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from click.testing import CliRunner
from conftest import env_for

from cio_flows.cli import main

ROWS_FLOW = """\
version: 1
name: rows
for_each: {file: users.csv, key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}
"""


def write_rows_flow(tmp_path: Path, rows: int) -> Path:
    lines = ["id,email"] + [f"r{i},r{i}@example.com" for i in range(rows)]
    (tmp_path / "users.csv").write_text("\n".join(lines) + "\n")
    flow = tmp_path / "rows.yaml"
    flow.write_text(ROWS_FLOW)
    return flow


def invoke(*args: str, env: dict[str, str]):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_a_damaged_journal_stops_before_anything_is_sent(tmp_path, recording_server):
    flow = write_rows_flow(tmp_path, 400)
    env = env_for(recording_server.url)
    first = invoke("run", str(flow), "--no-batch", env=env)
    assert first.exit_code == 0, first.output
    run_id = re.search(r"run id: (\S+)", first.output).group(1)
    journal = Path(os.environ["CIO_FLOWS_JOURNAL"])
    with sqlite3.connect(journal) as db:  # every page in the main file, none left in the WAL
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    assert pages > 8
    with journal.open("r+b") as raw:  # one page in the middle of the outcomes is garbage
        raw.seek(page_size * (pages // 2))
        raw.write(b"\xa5" * page_size)
    sent = len(recording_server.requests)

    resumed = invoke("run", str(flow), "--resume", run_id, "--no-batch", env=env)

    assert resumed.exit_code == 2, resumed.output
    assert str(journal) in resumed.output
    assert "damaged" in resumed.output
    assert "Traceback" not in resumed.output
    assert len(recording_server.requests) == sent  # nothing sent
