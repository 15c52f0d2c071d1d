"""Batched runs in forked worker processes (`run --processes N`, run/processes.py), as users run
them: every row once and in order, the journal and listeners as in one process, Ctrl-C, SIGTERM
and SIGKILL (of the run or of one worker) followed by a plain resume, and when a run stays in
one process. The bytes sent are compared with one process's in test_batched_equivalence.py.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorded, env_for
from support import cli, cli_ctrl_c, started
from test_exactly_once import MessagesServer, run_id_of, statuses, write_flow

from cio_flows import RunOptions, run_flow
from cio_flows.api import prepare
from cio_flows.run import processes
from cio_flows.run.events import RowFinished, StepFinished
from cio_flows.run.processes import AUTO_ROWS, available_cores, process_count
from cio_flows.wire.settings import TransportSettings

pytestmark = pytest.mark.slow

ROWS = 1_050  # 2 chunks (1,000 and 50): one for each of 2 workers


def flow_of(tmp_path: Path, rows: int = ROWS, *, once: bool = False) -> Path:
    return write_flow(tmp_path / "flows", rows, once=once)


def test_each_row_runs_once_its_steps_in_order_and_the_listeners_hear_everything(
    recording_server, tmp_path
):
    MessagesServer(recording_server, delay=0)
    flow = flow_of(tmp_path)
    heard: list[object] = []
    environ = env_for(recording_server.url)
    options = RunOptions(environ=environ, processes=2, journal=tmp_path / "journal.db")
    summary = run_flow(flow, options, [heard.append])

    assert (summary.exit_code, summary.processes, summary.rows) == (0, 2, ROWS)
    assert summary.counts["ok"] == 2 * ROWS
    steps_by_row: dict[str, list[str]] = defaultdict(list)
    finished: Counter[str] = Counter()
    for event in heard:
        if isinstance(event, StepFinished):
            assert finished[event.row_key or ""] == 0, "a step after its row finished"
            steps_by_row[event.row_key or ""].append(event.step.name)
        elif isinstance(event, RowFinished):
            finished[event.row_key or ""] += 1
    assert len(steps_by_row) == ROWS and set(finished.values()) == {1}
    assert {tuple(names) for names in steps_by_row.values()} == {("identify", "welcome")}
    assert type(heard[0]).__name__ == "RunStarted" and type(heard[-1]).__name__ == "RunFinished"

    journal = tmp_path / "journal.db"
    assert statuses(journal, summary.run_id, "steps.0") == {"ok": ROWS}
    assert statuses(journal, summary.run_id, "steps.1") == {"ok": ROWS}
    with sqlite3.connect(journal) as db:
        status, rows = db.execute(
            "SELECT status, rows FROM runs WHERE run_id = ?", (summary.run_id,)
        ).fetchone()
    assert (status, rows) == ("passed", ROWS)
    emails = Counter(r.body["to"] for r in recording_server.requests if r.path == "/v1/send/email")
    assert len(emails) == ROWS and max(emails.values()) == 1
    identified = Counter(
        item["userId"]
        for r in recording_server.requests
        if r.path == "/v1/batch"
        for item in r.body["batch"]
    )
    assert len(identified) == ROWS and max(identified.values()) == 1


def wait_for_sends(server: MessagesServer, process: subprocess.Popen[str], sends: int) -> None:
    deadline = time.monotonic() + 120
    while sum(server.sends().values()) < sends:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never sent that many"
        time.sleep(0.005)


def workers_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the run's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_unlocked(journal: Path, run_id: str) -> None:
    """Until no process holds the run's lock (the workers of a killed run are gone)."""
    lock = journal.with_name(f"{journal.name}.{run_id}.lock")
    deadline = time.monotonic() + 60
    while lock.exists():
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                assert time.monotonic() < deadline, "a worker outlived the killed run"
                time.sleep(0.05)


def resume(env: dict[str, str], flow: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli("run", str(flow), "--resume", run_id, "--processes", "2"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("how", ["ctrl-c to the process group", "sigterm to the run"])
def test_a_signal_stops_every_worker_and_a_resume_sends_the_rest_once(
    recording_server, tmp_path, how
):
    server = MessagesServer(recording_server, delay=0.02)
    flow = flow_of(tmp_path)
    journal = tmp_path / "journal.db"
    env = {**os.environ, **env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))}
    first = started(cli_ctrl_c("run", str(flow), "--processes", "2"), env, own_group=True)
    run_id = run_id_of(first)
    wait_for_sends(server, first, 100)
    if how.startswith("ctrl-c"):
        os.killpg(first.pid, signal.SIGINT)  # what a terminal does: every process of the group
    else:
        first.send_signal(signal.SIGTERM)  # the run only: it tells its workers
    out, err = first.communicate(timeout=120)
    assert first.returncode == 1, out + err
    assert "in 2 processes" in out and "interrupted: the run did not finish" in out, out
    assert f"--resume {run_id}" in out
    assert 100 <= sum(server.sends().values()) < ROWS, "the signal stopped nothing"

    again = resume(env, flow, run_id)
    assert again.returncode == 0, again.stdout + again.stderr
    emails = server.sends()
    assert len(emails) == ROWS and max(emails.values()) == 1
    assert statuses(journal, run_id) == {"ok": ROWS}


def test_a_sigkill_of_the_run_takes_its_workers_and_a_resume_sends_each_email_once(
    recording_server, tmp_path
):
    server = MessagesServer(recording_server, delay=0.02)
    flow = flow_of(tmp_path)
    journal = tmp_path / "journal.db"
    env = {**os.environ, **env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))}
    first = started(cli("run", str(flow), "--processes", "2"), env)
    run_id = run_id_of(first)
    wait_for_sends(server, first, 150)
    workers = workers_of(first.pid)
    assert len(workers) == 2
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    wait_unlocked(journal, run_id)
    sent_at_kill = sum(server.sends().values())
    time.sleep(0.3)  # a worker left running would go on sending
    assert sum(server.sends().values()) == sent_at_kill

    again = resume(env, flow, run_id)
    assert again.returncode == 0, again.stdout + again.stderr
    emails = server.sends()
    assert len(emails) == ROWS and max(emails.values()) == 1
    assert statuses(journal, run_id) == {"ok": ROWS}


def test_a_worker_killed_mid_run_is_reported_and_a_resume_finishes_its_rows(
    recording_server, tmp_path
):
    server = MessagesServer(recording_server, delay=0.02)
    flow = flow_of(tmp_path)
    journal = tmp_path / "journal.db"
    env = {**os.environ, **env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))}
    first = started(cli("run", str(flow), "--processes", "2"), env)
    run_id = run_id_of(first)
    wait_for_sends(server, first, 100)
    victim = min(workers_of(first.pid))
    os.kill(victim, signal.SIGKILL)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 1, out + err
    assert "stopped before its rows were done (killed by signal 9)" in out + err
    assert f"--resume {run_id}" in out

    again = resume(env, flow, run_id)
    assert again.returncode == 0, again.stdout + again.stderr
    emails = server.sends()
    assert len(emails) == ROWS and max(emails.values()) == 1
    assert statuses(journal, run_id) == {"ok": ROWS}


# --- when a run stays in one process ---------------------------------------------------------


def prepared(tmp_path: Path, rows: int, *, once: bool = False, **options):
    flow = flow_of(tmp_path, rows, once=once)
    environ = env_for("http://127.0.0.1:9")
    return prepare(flow, RunOptions(environ=environ, **options))


def test_without_processes_big_batched_data_takes_one_process_per_core(tmp_path, monkeypatch):
    # threads other tests left in this pytest process (a server fixture's) would count as a
    # notebook's: the rule for them is checked below, with one of our own
    monkeypatch.setattr(processes, "_other_threads", lambda: False)
    assert process_count(prepared(tmp_path, AUTO_ROWS), None, emulated=False) == min(
        available_cores(), 8
    )
    assert process_count(prepared(tmp_path, AUTO_ROWS - 1), None, emulated=False) == 1
    assert process_count(prepared(tmp_path, AUTO_ROWS), None, emulated=True) == 1
    assert process_count(prepared(tmp_path, 10), 3, emulated=True) == 3


def test_a_process_with_other_threads_forks_only_when_asked(tmp_path):
    """A notebook kernel's or a server's threads would be copied mid-lock by a fork."""
    release = threading.Event()
    other = threading.Thread(target=release.wait, name="kernel-heartbeat", daemon=True)
    other.start()
    try:
        assert process_count(prepared(tmp_path, AUTO_ROWS), None, emulated=False) == 1
        assert process_count(prepared(tmp_path, AUTO_ROWS), 2, emulated=False) == 2
    finally:
        release.set()
        other.join()


@pytest.mark.parametrize(
    ("why", "options", "once"),
    [
        ("a step has `once`", {}, True),
        ("it is not batched", {"batch": False}, False),
        ("traced, recorded or replayed", {"transport": "hooked"}, False),
    ],
)
def test_a_run_that_cannot_be_split_takes_one_process_and_says_why(tmp_path, why, options, once):
    if options.get("transport") == "hooked":
        options = {"transport": replace(TransportSettings(), on_exchange=lambda *args: None)}
    run = prepared(tmp_path, 50, once=once, **options)
    assert process_count(run, 4, emulated=False) == 1
    assert any(note.startswith("--processes 4: ") and why in note for note in run.notes), run.notes
    quiet = prepared(tmp_path, AUTO_ROWS, once=once, **options)
    assert process_count(quiet, None, emulated=False) == 1
    assert quiet.notes == []  # nothing was asked for: nothing to explain


BATCH_FLOW = """\
version: 1
name: batch_at_ctrl_c
for_each: {file: people.csv, key: "{{ row.id }}"}
steps:
  - name: identify
    identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}
"""


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_batch_on_the_wire_at_ctrl_c_is_recorded_for_every_row_it_held(
    recording_server, tmp_path, processes
):
    """Ctrl-C lets the steps in flight finish: a batch already sent is answered for, row by
    row, so a resume sends none of its rows again (and nothing new is sent after the signal)."""
    rows = 3_000 * int(processes)  # chunks still to come in each worker at the signal

    def slow_batches(request: Recorded) -> tuple[int, dict[str, str], Any]:
        time.sleep(0.5 if request.path == "/v1/batch" else 0)
        return 200, {}, {}

    recording_server.handler = slow_batches
    folder = tmp_path / "flows"
    write_flow(folder, rows)  # people.csv: id, email
    flow = folder / "batch.yaml"
    flow.write_text(BATCH_FLOW)
    journal = tmp_path / "journal.db"
    env = {**os.environ, **env_for(recording_server.url, CIO_FLOWS_JOURNAL=str(journal))}
    args = ["run", str(flow), "--workers", processes, "--processes", processes]  # a thread each
    first = started(cli_ctrl_c(*args), env)
    run_id = run_id_of(first)
    deadline = time.monotonic() + 120
    while len([r for r in recording_server.requests if r.path == "/v1/batch"]) < int(processes):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "no batch was sent"
        time.sleep(0.005)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 1, out + err
    batches = [r for r in recording_server.requests if r.path == "/v1/batch"]
    sent = sum(len(r.body["batch"]) for r in batches)
    assert 1_000 * int(processes) <= sent < rows, "the signal stopped nothing"
    assert statuses(journal, run_id, "steps.0") == {"ok": sent}  # every row of every batch

    again = subprocess.run(
        cli("run", str(flow), "--resume", run_id), env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stdout + again.stderr
    users = Counter(
        item["userId"]
        for r in recording_server.requests
        if r.path == "/v1/batch"
        for item in r.body["batch"]
    )
    assert len(users) == rows and max(users.values()) == 1  # the resume sent only the rest
