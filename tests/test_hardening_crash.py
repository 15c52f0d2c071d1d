"""Crashes and concurrency with real `cio-flows run` processes (issue 9, items 12, 13, 16, 17).

A local server counts every transactional send when it arrives (before answering), so a send
whose answer the killed process never read still counts: a duplicate is a recipient counted twice.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import default_answer, env_for
from support import cli

pytestmark = pytest.mark.slow  # real processes, killed mid-send

FLOW = """\
version: 1
name: crash_sends
for_each: {file: people.csv, key: "{{ row.id }}"}
steps:
  - name: welcome
    send_email:
      transactional_message_id: welcome
      to: "{{ row.email }}"
      identifiers: {id: "{{ row.id }}"}
"""


def write_flow(folder: Path, rows: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["id,email"] + [f"u{i},u{i}@example.com" for i in range(rows)]
    (folder / "people.csv").write_text("\n".join(lines) + "\n")
    path = folder / "crash.yaml"
    path.write_text(FLOW)
    return path


def slow(seconds: float):
    """A server that takes `seconds` to answer, so a kill lands while sends are in flight."""

    def answer(request):
        time.sleep(seconds)
        return default_answer(request)

    return answer


def cli_env(server, journal: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    env.update(env_for(server.url))
    env["CIO_FLOWS_JOURNAL"] = str(journal)
    return env


def start(env, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        cli("run", *args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), env=env, capture_output=True, text=True, timeout=120)


def sends(server) -> Counter[str]:
    """Recipient -> how many sends the server received for it."""
    return Counter(r.body["to"] for r in list(server.requests) if r.path == "/v1/send/email")


def wait_for_sends(server, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while sum(sends(server).values()) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never sent that many"
        time.sleep(0.005)


def run_id_of(process: subprocess.Popen) -> str:
    line = process.stdout.readline()
    assert line.startswith("run id: "), line + process.stderr.read()
    return line.strip().removeprefix("run id: ")


def statuses(journal: Path, run_id: str) -> dict[str, str]:
    """Row key -> the status the journal committed for its send step."""
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT row_key, status FROM outcomes WHERE run_id = ?", (run_id,))
        return dict(rows.fetchall())


def assert_each_sent_once_except_unknown(server, journal, run_id, rows, *, max_unknown):
    """No recipient twice; every row settled ok was sent exactly once; unknown ones at most once."""
    counted = sends(server)
    assert max(counted.values()) == 1, [to for to, n in counted.items() if n > 1]
    final = statuses(journal, run_id)
    assert len(final) == rows
    unknown = {key for key, status in final.items() if status == "unknown"}
    assert set(final.values()) <= {"ok", "unknown"}, Counter(final.values())
    assert len(unknown) <= max_unknown, unknown
    for key, status in final.items():
        if status == "ok":
            assert counted[f"{key}@example.com"] == 1, key
    return unknown


def test_sigkill_mid_send_then_resume_sends_nobody_twice_10_trials(recording_server, tmp_path):
    rows, workers = 200, 4
    recording_server.handler = slow(0.004)
    chooser = random.Random(12)
    for trial in range(10):
        recording_server.requests.clear()
        folder = tmp_path / f"trial{trial}"
        flow, journal = write_flow(folder, rows), folder / "journal.db"
        env = cli_env(recording_server, journal)
        first = start(env, str(flow), "--workers", str(workers))
        run_id = run_id_of(first)
        wait_for_sends(recording_server, chooser.randrange(5, 150), first)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        sent_before = sum(sends(recording_server).values())

        resumed = run(env, "run", str(flow), "--resume", run_id)
        assert "Traceback" not in resumed.stderr, resumed.stderr
        unknown = assert_each_sent_once_except_unknown(
            recording_server, journal, run_id, rows, max_unknown=2 * workers
        )
        assert resumed.returncode == (4 if unknown else 0), resumed.stdout + resumed.stderr
        assert sum(sends(recording_server).values()) > sent_before, "the resume sent the rest"


def test_resume_reports_an_in_flight_send_unknown_and_resend_unknown_sends_it(
    recording_server, tmp_path
):
    rows = 30
    recording_server.handler = slow(0.01)
    flow, journal = write_flow(tmp_path, rows), tmp_path / "journal.db"
    env = cli_env(recording_server, journal)
    first = start(env, str(flow), "--workers", "2")
    run_id = run_id_of(first)
    wait_for_sends(recording_server, 10, first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    with sqlite3.connect(journal) as db:  # an in-flight mark is committed before each send
        in_flight = db.execute(
            "SELECT count(*) FROM outcomes WHERE status = 'in_flight' AND run_id = ?", (run_id,)
        ).fetchone()[0]
    assert in_flight >= 1

    resumed = run(env, "run", str(flow), "--resume", run_id)
    assert resumed.returncode == 4, resumed.stdout + resumed.stderr  # an outcome unknown
    assert "outcome unknown" in resumed.stdout
    unknown = assert_each_sent_once_except_unknown(
        recording_server, journal, run_id, rows, max_unknown=4
    )
    assert unknown, "what was in flight at the kill is unknown"

    again = run(env, "run", str(flow), "--resume", run_id, "--resend-unknown")
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(statuses(journal, run_id).values()) == {"ok"}
    assert all(sends(recording_server)[f"{key}@example.com"] >= 1 for key in unknown)


def test_two_simultaneous_resumes_one_is_refused_naming_the_holder(recording_server, tmp_path):
    rows = 200
    recording_server.handler = slow(0.03)  # 2 workers: the resume takes seconds
    flow, journal = write_flow(tmp_path, rows), tmp_path / "journal.db"
    env = cli_env(recording_server, journal)
    first = start(env, str(flow), "--workers", "2")
    run_id = run_id_of(first)
    wait_for_sends(recording_server, 20, first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    both = [start(env, str(flow), "--resume", run_id, "--workers", "2") for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in both]
    codes = [code for code, _, _ in results]
    assert codes.count(2) == 1 and set(codes) - {2} <= {0, 4}, results  # 4: a send left unknown
    _, out, err = next(r for r in results if r[0] == 2)
    assert f"run '{run_id}' is being executed by pid " in err and " on host " in err, err
    holder = next(p for p, r in zip(both, results, strict=True) if r[0] != 2)
    assert f"pid {holder.pid} on host" in err
    assert "Traceback" not in err and out == ""
    assert_each_sent_once_except_unknown(recording_server, journal, run_id, rows, max_unknown=4)

    # The lock goes with its process: a later resume runs.
    later = run(env, "run", str(flow), "--resume", run_id)
    assert later.returncode in (0, 4), later.stderr


def test_sigterm_mid_run_stops_like_ctrl_c_and_resumes_without_duplicates(
    recording_server, tmp_path
):
    rows = 200
    recording_server.handler = slow(0.01)
    flow, journal = write_flow(tmp_path, rows), tmp_path / "journal.db"
    env = cli_env(recording_server, journal)
    first = start(env, str(flow), "--workers", "4")
    run_id = run_id_of(first)
    wait_for_sends(recording_server, 40, first)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=30)
    assert first.returncode == 1, out + err
    assert "interrupted" in out and "Traceback" not in err, out + err
    sent_before = sum(sends(recording_server).values())
    assert sent_before < rows
    # Flushed on the way out: every send it made is recorded ok, none in flight. A send whose
    # in-flight mark was committed as the signal came is refused before it leaves, and is
    # recorded failed (answering its mark: the resume sends it).
    recorded = Counter(statuses(journal, run_id).values())
    assert recorded["ok"] == sent_before and set(recorded) <= {"ok", "failed"}, recorded
    assert recorded["failed"] <= 4  # --workers 4: one step in flight each at most
    listed = run(env, "runs")
    assert any(
        line.startswith(run_id) and "interrupted" in line for line in listed.stdout.split("\n")
    )

    resumed = run(env, "run", str(flow), "--resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_each_sent_once_except_unknown(recording_server, journal, run_id, rows, max_unknown=0)


@pytest.mark.parametrize("kind", ["directory", "read-only", "garbage"])
@pytest.mark.parametrize("resume", [False, True])
def test_an_unusable_journal_exits_2_naming_it_before_any_request(
    recording_server, tmp_path, kind, resume
):
    flow = write_flow(tmp_path, 3)
    journal = tmp_path / "journal.db"
    if kind == "directory":
        journal.mkdir()
        reason = "is a directory"
    elif kind == "read-only":
        journal.touch()
        journal.chmod(0o444)
        reason = "is read-only"
    else:
        journal.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
        reason = "is not a SQLite database"
    env = cli_env(recording_server, journal)
    args = ["run", str(flow)] + (["--resume", "20260101000000-abcdef"] if resume else [])
    result = run(env, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"journal {journal}: {reason}" in result.stderr
    assert "Traceback" not in result.stderr
    assert recording_server.requests == []


# A tiny disk: the run starts with a usable journal, then a write past the size limit fails.
_LIMITED = (
    "import resource, runpy, signal, sys;"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
    "limit = int(sys.argv.pop(1));"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit));"
    "sys.argv[0] = 'cio-flows';"
    "runpy.run_module('cio_flows.cli', run_name='__main__')"
)


def test_a_journal_write_failure_mid_run_stops_sending_and_exits_4(recording_server, tmp_path):
    rows = 400
    flow, journal = write_flow(tmp_path, rows), tmp_path / "journal.db"
    env = cli_env(recording_server, journal)
    # Room for some outcomes (and the request hashes committed with them); the disk fills
    # while rows are being sent.
    result = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(160 * 1024), "run", str(flow), "--workers", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"journal {journal}: cannot be written: disk I/O error" in result.stderr
    assert "stopped sending" in result.stderr and "Traceback" not in result.stderr
    counted = sends(recording_server)
    assert 0 < sum(counted.values()) < rows, "it started, then stopped sending"
    assert max(counted.values()) == 1
    # Nothing went out unrecorded: each send had its in-flight mark committed first.
    run_id = result.stdout.splitlines()[0].removeprefix("run id: ")
    recorded = {f"{key}@example.com" for key in statuses(journal, run_id)}
    assert set(counted) <= recorded
