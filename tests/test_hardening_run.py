"""Run-side hardening: a damaged journal, report paths that cannot be written, a second signal.

Each case runs the real command line against a real local server and checks what was sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import env_for
from hostile_server import HostileServer, Reply, serve, wait_for
from support import cli_ctrl_c

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


SENDS_FLOW = """\
version: 1
name: sends
for_each: {file: users.csv, key: "{{ row.id }}"}
steps:
  - send_email: {transactional_message_id: 7, to: "{{ row.email }}", identifiers: {id: "{{ row.id }}"}}
"""


@pytest.fixture
def hanging_server() -> Iterator[HostileServer]:
    """A server that reads each request and never answers."""
    state = HostileServer()
    state.answer = lambda seen: Reply(hang=True)
    yield from serve(state)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_ends_a_run_waiting_on_answers(tmp_path, hanging_server, signum):
    flow = write_rows_flow(tmp_path, 20)
    flow.write_text(SENDS_FLOW)
    env = {**os.environ, **env_for(hanging_server.url)}
    process = subprocess.Popen(
        cli_ctrl_c("run", str(flow), "--workers", "2", "--timeout", "600"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(hanging_server.seen) >= 2)  # both workers wait on an answer
        process.send_signal(signum)  # the first: no new rows, wait for those in flight...
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=1)
        # ...the second: stop waiting. Two signals that reach a loaded process before its main
        # thread runs are one KeyboardInterrupt, so a signal is sent again until it exits.
        for _ in range(30):
            process.send_signal(signum)
            try:
                process.wait(timeout=2)
                break
            except subprocess.TimeoutExpired:
                continue
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 1, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert "second signal" in stdout
    assert len(hanging_server.seen) == 2  # nothing sent after the first signal
    run_id = re.search(r"run id: (\S+)", stdout).group(1)
    journal = os.environ["CIO_FLOWS_JOURNAL"]
    with contextlib.closing(sqlite3.connect(journal)) as db:
        assert db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        (status,) = db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        in_flight = db.execute("SELECT count(*) FROM outcomes WHERE status = 'in_flight'")
        assert in_flight.fetchone() == (2,)  # may have been sent: unknown on resume, not resent
    assert status == "interrupted"


def unwritable_paths(tmp_path: Path) -> list[Path]:
    """Paths no report can be written to, even as root."""
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    return [a_file / "report.out", a_dir, Path("/proc/version/report.out")]


@pytest.mark.parametrize("flag", ["--report", "--junit"])
def test_an_unwritable_report_path_stops_the_run_before_sending(tmp_path, recording_server, flag):
    flow = write_rows_flow(tmp_path, 3)
    for path in unwritable_paths(tmp_path):
        result = invoke("run", str(flow), flag, str(path), env=env_for(recording_server.url))
        assert result.exit_code == 2, result.output
        assert flag in result.output and str(path) in result.output
        assert recording_server.requests == []


@pytest.mark.parametrize("flag", ["--report", "--junit"])
def test_an_unwritable_report_path_stops_a_suite_before_sending(tmp_path, recording_server, flag):
    flow = write_rows_flow(tmp_path, 3)
    path = unwritable_paths(tmp_path)[0]
    result = invoke("test", str(flow), flag, str(path), env=env_for(recording_server.url))
    assert result.exit_code == 2, result.output
    assert f"{flag}: cannot write {path}" in result.output
    assert recording_server.requests == []


@pytest.mark.parametrize("flag", ["--report", "--junit"])
def test_a_report_is_written_through_a_symlink(tmp_path, recording_server, flag):
    flow = write_rows_flow(tmp_path, 3)
    target = tmp_path / "reports" / "latest.out"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "report-link"
    link.symlink_to(target)
    result = invoke("run", str(flow), flag, str(link), env=env_for(recording_server.url))
    assert result.exit_code == 0, result.output
    assert link.is_symlink()  # still the link...
    assert "rows" in target.read_text()  # ...and the report in its target


def test_a_report_is_written_into_a_device_not_over_it(tmp_path, recording_server):
    # A pipe stands for /dev/stdout: os.replace would put a regular file in its place.
    flow = write_rows_flow(tmp_path, 3)
    fifo = tmp_path / "report.pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = invoke("run", str(flow), "--report", str(fifo), env=env_for(recording_server.url))
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert json.loads(b"".join(received))["flow"] == "rows"
