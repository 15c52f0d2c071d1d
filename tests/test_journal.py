"""The run journal: round trip, upserts, threads, batched commits, SIGKILL, resume data, secrets."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cio_flows.errors import JournalError, Location
from cio_flows.flow.model import Step
from cio_flows.redact import Redactor
from cio_flows.run.events import RowFinished, RunFinished, RunStarted, RunSummary, StepFinished
from cio_flows.run.journal import Journal, Outcome, RunInUseError, default_journal_path

ROOT = Path(__file__).resolve().parent.parent


def step(index: int, name: str = "", kind: str = "identify", save: str | None = None) -> Step:
    return Step(
        kind=kind,
        payload={},
        name=name or f"step{index}",
        index=index,
        section="steps",
        location=Location("flows/demo.yaml", 10 + index, 5),
        save=save,
    )


def committed(path: Path, run_id: str = "r1") -> int:
    """Outcomes another connection can see: what survives a crash."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM outcomes WHERE run_id = ?", (run_id,)).fetchone()[0]


def summary(run_id: str = "r1", **kw: Any) -> RunSummary:
    s = RunSummary(run_id, "demo")
    for name, value in kw.items():
        setattr(s, name, value)
    return s


@pytest.fixture
def journal(tmp_path: Path):
    with Journal(tmp_path / "j" / "journal.db") as j:
        yield j


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal(path) as j:
        options = {"vars": {"plan": "pro"}, "data": "people.csv", "batch": True}
        j.start_run("r1", "flows/demo.yaml", "demo", "eu", options)
        j.record("r1", "u1", "steps.0", "ok", 1)
        j.record("r1", "u2", "steps.0", "failed", 3, "HTTP 400: bad email")
        j.finish_run(
            "r1", summary(counts={"ok": 1, "failed": 1, "skipped": 0, "unknown": 0}, rows=2)
        )
    with Journal(path) as j:  # reopened: everything was committed on finish
        (run,) = j.runs()
        assert run == j.run("r1")
        assert (run.run_id, run.flow_name, run.flow_path, run.region) == (
            "r1",
            "demo",
            "flows/demo.yaml",
            "eu",
        )
        assert run.status == "failed"
        assert run.counts["failed"] == 1 and run.rows == 2
        assert run.options == {"vars": {"plan": "pro"}, "data": "people.csv", "batch": True}
        assert run.finished_at is not None and run.finished_at >= run.started_at
        assert j.outcomes("r1") == {
            ("u1", "steps.0"): Outcome("ok", 1, None),
            ("u2", "steps.0"): Outcome("failed", 3, "HTTP 400: bad email"),
        }
        assert j.run("nope") is None


def test_wal_mode_and_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "nested" / "dir" / "runs.db"
    monkeypatch.setenv("CIO_FLOWS_JOURNAL", str(target))
    assert default_journal_path() == target
    with Journal():
        pass
    with sqlite3.connect(target) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    monkeypatch.delenv("CIO_FLOWS_JOURNAL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # platformdirs reads it on Linux
    assert default_journal_path() == tmp_path / "data" / "cio-flows" / "journal.db"


def test_runs_newest_first_with_status(journal: Journal) -> None:
    for n, outcome in enumerate(["passed", "failed", "interrupted", "running"]):
        run_id = f"r{n}"
        journal.start_run(run_id, "f.yaml", "f", "us", {})
        if outcome == "failed":
            journal.finish_run(
                run_id, summary(run_id, counts={"ok": 0, "failed": 1, "skipped": 0, "unknown": 0})
            )
        elif outcome != "running":
            journal.finish_run(run_id, summary(run_id, interrupted=outcome == "interrupted"))
        time.sleep(0.01)
    statuses = [(r.run_id, r.status) for r in journal.runs()]
    # r3 is still running in this (live) process
    assert statuses == [
        ("r3", "running"),
        ("r2", "interrupted"),
        ("r1", "failed"),
        ("r0", "passed"),
    ]
    assert [r.run_id for r in journal.runs(limit=2)] == ["r3", "r2"]


def test_upsert_keeps_one_row_per_row_and_step(journal: Journal) -> None:
    journal.start_run("r1", "f.yaml", "f", "us", {})
    journal.record("r1", "u1", "steps.0", "ok", 1, result={"id": 7})
    journal.record("r1", "u1", "steps.1", "failed", 2, "timeout")
    # a resume: the replayed step carries no result, the retried one now passes
    journal.record("r1", "u1", "steps.0", "ok", 0)
    journal.record("r1", "u1", "steps.1", "ok", 1)
    journal.flush()
    assert journal.outcomes("r1") == {
        ("u1", "steps.0"): Outcome("ok", 1, None, {"id": 7}),
        ("u1", "steps.1"): Outcome("ok", 3, None),
    }


def test_concurrent_records_from_eight_threads(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    per_thread = 2_500
    with Journal(path, batch_size=700, flush_interval=0.05) as j:
        j.start_run("r1", "f.yaml", "f", "us", {})
        listen = j.listener("r1")
        steps = [step(0), step(1)]

        def worker(t: int) -> None:
            for n in range(per_thread):
                status = "failed" if n % 10 == 0 else "ok"
                listen(StepFinished(steps[n % 2], n, f"t{t}-{n // 2}", status, 0.001, 1))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        j.flush()
        assert committed(path) == 8 * per_thread
        assert j.run("r1").counts == {"ok": 18_000, "failed": 2_000, "skipped": 0, "unknown": 0}
        outcomes = j.outcomes("r1")
        assert len(outcomes) == 8 * per_thread
        assert sum(o.status == "failed" for o in outcomes.values()) == 8 * 250


def test_commits_are_batched(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal(path, batch_size=1000, flush_interval=3600) as j:
        j.start_run("r1", "f.yaml", "f", "us", {})
        for n in range(10):
            j.record("r1", str(n), "steps.0", "ok", 1)
        assert committed(path) == 0  # buffered, not one commit per record
        j.flush()
        assert committed(path) == 10
        for n in range(10, 2510):
            j.record("r1", str(n), "steps.0", "ok", 1)
        assert committed(path) == 2010  # two full batches went in on their own
    assert committed(path) == 2510  # close flushes the rest


def test_commits_on_a_timer_when_quiet(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal(path, batch_size=1000, flush_interval=0.05) as j:
        j.start_run("r1", "f.yaml", "f", "us", {})
        j.record("r1", "u1", "steps.0", "ok", 1)
        deadline = time.monotonic() + 5
        while committed(path) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert committed(path) == 1


_CHILD = textwrap.dedent(
    """
    import sys, time
    from cio_flows.run.journal import Journal
    j = Journal(sys.argv[1], batch_size=100, flush_interval=3600)
    j.start_run("r1", "f.yaml", "f", "us", {"data": "people.csv"})
    for n in range(int(sys.argv[2])):
        j.record("r1", str(n), "steps.0", "ok", 1, result={"n": n})
    print("recorded", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.slow
def test_sigkill_leaves_a_readable_journal_shown_interrupted(tmp_path: Path) -> None:
    path, n, batch = tmp_path / "journal.db", 1234, 100
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(n)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert child.stdout.readline().strip() == "recorded"
        with Journal(path) as j:
            assert j.run("r1").status == "running"  # its process is alive
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()  # reaped: a zombie would still answer kill(pid, 0)
    with Journal(path) as j:
        run = j.run("r1")
        assert run.status == "interrupted"
        assert [r.status for r in j.runs()] == ["interrupted"]
        assert run.options == {"data": "people.csv"}
        outcomes = j.outcomes("r1")
        assert n - batch < len(outcomes) <= n  # at most the last, uncommitted batch is lost
        assert outcomes[("0", "steps.0")] == Outcome("ok", 1, None, {"n": 0})
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_listener_keeps_what_a_resume_needs(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    lookup, create = step(0, "lookup", "get_person", save="person"), step(1, "create")
    with Journal(path) as j:
        listen = j.listener("r1")
        listen(RunStarted("r1", "demo", "flows/demo.yaml", "us", {}))
        listen(StepFinished(lookup, 1, "u1", "ok", 0.01, 1, saved={"cio_id": "a1"}))
        listen(StepFinished(create, 1, "u1", "ok", 0.01, 1))
        listen(RowFinished(1, "u1", "ok"))
        listen(StepFinished(lookup, 2, "u2", "ok", 0.01, 1, saved={"cio_id": "a2"}))
        listen(StepFinished(create, 2, "u2", "unknown", 0.01, 2, "timed out after sending"))
        listen(RowFinished(2, "u2", "failed"))
        listen(StepFinished(create, None, None, "failed", 0.0, 0, "bad row key"))
        s = summary(counts={"ok": 3, "failed": 1, "skipped": 0, "unknown": 1}, rows=3)
        listen(RunFinished(s))
    with Journal(path) as j:
        run = j.run("r1")
        assert (run.status, run.flow_path, run.rows) == ("failed", "flows/demo.yaml", 3)
        assert j.row_outcomes("r1", "u1") == {
            "steps.0": Outcome("ok", 1, None, {"cio_id": "a1"}),
            "steps.1": Outcome("ok", 1, None),
        }
        assert j.row_outcomes("r1", "u2")["steps.1"] == Outcome(
            "unknown", 2, "timed out after sending"
        )
        assert j.outcomes("r1")[("-", "steps.1")].error == "bad row key"
        # resume: same run id, the CLI's options kept, status back to running
        j.start_run("r1", "flows/demo.yaml", "demo", "us", {"resume": True})
        listen = j.listener("r1")
        listen(RunStarted("r1", "demo", "flows/demo.yaml", "us", {}))
        listen(StepFinished(lookup, 2, "u2", "ok", 0.0, 0, detail="done before"))
        listen(StepFinished(create, 2, "u2", "ok", 0.02, 1))
        listen(RowFinished(2, "u2", "ok"))
        j.flush()
        assert j.run("r1").status == "running"
        assert j.run("r1").options == {"resume": True}
        assert j.run("r1").rows == 1  # progress so far, stored with each commit
        assert j.row_outcomes("r1", "u2") == {
            "steps.0": Outcome("ok", 1, None, {"cio_id": "a2"}),  # saved response survives
            "steps.1": Outcome("ok", 3, None),
        }


def test_no_key_reaches_the_journal_file(tmp_path: Path) -> None:
    secret = "track-secret-abcdef"
    folder = tmp_path / "j"
    with Journal(folder / "journal.db", redactor=Redactor([secret])) as j:
        j.start_run("r1", "f.yaml", "f", "us", {"vars": {"token": secret}})
        j.record(
            "r1",
            "u1",
            "steps.0",
            "failed",
            1,
            f"401 for key {secret}; Authorization: Bearer xyz123",
        )
        j.record("r1", "u1", "steps.1", "ok", 1, result={"echo": secret})
        j.finish_run("r1", summary())
        outcome = j.outcomes("r1")[("u1", "steps.0")]
        assert outcome.error == "401 for key ***; Authorization: Bearer ***"
        assert j.outcomes("r1")[("u1", "steps.1")].result == {"echo": "***"}
    files = list(folder.iterdir())
    assert files
    for file in files:
        data = file.read_bytes()
        assert secret.encode() not in data and b"xyz123" not in data, file


def test_an_in_flight_mark_is_committed_at_once_and_reads_back_unknown(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal(path, batch_size=1000, flush_interval=3600) as j:
        j.start_run("r1", "f.yaml", "f", "us", {})
        j.record("r1", "u0", "steps.0", "ok", 1)
        assert committed(path) == 0  # outcomes of repeatable steps stay batched
        j.mark_in_flight("r1", "u1", "steps.0")
        assert committed(path) == 2  # the mark, and what was buffered before it
        assert j.row_outcomes("r1", "u1")["steps.0"] == Outcome(
            "unknown", 0, "was being sent when the run stopped: outcome unknown"
        )
        j.record("r1", "u1", "steps.0", "ok", 1)  # the answer came back
        j.flush()
        assert j.row_outcomes("r1", "u1")["steps.0"] == Outcome("ok", 1, None)
        assert j.run("r1").counts["ok"] == 2  # a mark is not an outcome


def test_outcomes_recorded_together_are_committed_at_once_when_one_was_in_flight(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    with Journal(path, batch_size=1000, flush_interval=3600) as j:
        j.start_run("r1", "f.yaml", "f", "us", {})
        j.mark_in_flight("r1", "u1", "steps.0")
        assert committed(path) == 1
        j.record_many(
            "r1",
            [
                ("u0", "steps.0", "ok", 1, None, None, 11),
                ("u1", "steps.0", "failed", 2, "HTTP 400", {"kept": True}, 12),
                ("u2", "steps.0", "ok", 1, None, None, None),
            ],
        )
        # the answer to a send not safe to repeat carries the others' with it
        assert committed(path) == 3
        assert j.row_outcomes("r1", "u1")["steps.0"] == Outcome(
            "failed", 2, "HTTP 400", {"kept": True}
        )
        assert j.run("r1").counts == {"ok": 2, "failed": 1, "skipped": 0, "unknown": 0}
        j.record_many("r1", [("u3", "steps.0", "ok", 1, None, None, None)])
        assert committed(path) == 3  # none in flight: left to the next commit


def test_concurrent_in_flight_marks_all_commit(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal(path, flush_interval=3600) as j:
        j.start_run("r1", "f.yaml", "f", "us", {})

        def worker(t: int) -> None:
            for n in range(50):
                j.mark_in_flight("r1", f"t{t}-{n}", "steps.0")
                assert committed(path) >= 1

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert committed(path) == 400


def test_one_process_at_a_time_runs_a_run_id(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal(path) as first, Journal(path) as second:
        first.start_run("r1", "f.yaml", "f", "us", {})
        with pytest.raises(RunInUseError) as refused:
            second.start_run("r1", "f.yaml", "f", "us", {})
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in str(refused.value)
        second.start_run("r2", "f.yaml", "f", "us", {})  # another run id is free
        first.finish_run("r1", summary())
        second.start_run("r1", "f.yaml", "f", "us", {})  # released when it finished
    assert not list(tmp_path.glob("*.lock"))  # nothing left behind


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from cio_flows.run.journal import Journal
    j = Journal(sys.argv[1])
    j.start_run("r1", "f.yaml", "f", "us", {})
    print("locked", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.slow
def test_a_killed_process_releases_its_run_lock(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with Journal(path) as j, pytest.raises(RunInUseError, match=f"pid {child.pid} on host"):
            j.start_run("r1", "f.yaml", "f", "us", {})
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    with Journal(path) as j:
        j.start_run("r1", "f.yaml", "f", "us", {})  # the kernel dropped the lock with the process


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"not sqlite at all\n" * 200), "is not a SQLite database"),
        (lambda p: (p.touch(), p.chmod(0o444)), "is read-only"),
    ],
    ids=["directory", "garbage", "read-only"],
)
def test_an_unusable_journal_is_refused_when_opened(tmp_path: Path, make, reason) -> None:
    path = tmp_path / "journal.db"
    make(path)
    with pytest.raises(JournalError) as refused:
        Journal(path)
    assert str(refused.value).startswith(f"journal {path}: {reason}")


def test_a_failed_write_stops_further_records_and_sends(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    j = Journal(path, flush_interval=3600)
    j.start_run("r1", "f.yaml", "f", "us", {})
    j.record("r1", "u0", "steps.0", "ok", 1)
    real = j._db
    j._db = _FailingConnection(real)  # as a full disk would
    with pytest.raises(JournalError, match="cannot be written: the disk is full"):
        j.mark_in_flight("r1", "u1", "steps.0")
    assert j.failure is not None
    with pytest.raises(JournalError):
        j.record("r1", "u2", "steps.0", "ok", 1)
    with pytest.raises(JournalError):
        j.mark_in_flight("r1", "u3", "steps.0")
    j._db = real
    j.close()  # no traceback on the way out: the failure was reported when it happened


class _FailingConnection:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: Any):
        if sql == "COMMIT":
            self._db.execute("ROLLBACK")
            raise _full_disk()
        return self._db.execute(sql, *args)

    def executemany(self, sql: str, rows: Any):
        return self._db.executemany(sql, rows)

    def close(self) -> None:
        self._db.close()


def _full_disk() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorname = "SQLITE_FULL"
    return error


OLD_OUTCOMES = """
CREATE TABLE outcomes (
    run_id TEXT NOT NULL, row_key TEXT NOT NULL, step_key TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, error TEXT, result TEXT,
    PRIMARY KEY (run_id, row_key, step_key)
) WITHOUT ROWID;
CREATE TABLE request_hashes (
    run_id TEXT NOT NULL, row_key TEXT NOT NULL, step_key TEXT NOT NULL, hash INTEGER NOT NULL,
    PRIMARY KEY (run_id, row_key, step_key)
) WITHOUT ROWID;
INSERT INTO outcomes VALUES ('old', 'u1', 'steps.0', 'ok', 1, NULL, NULL);
INSERT INTO request_hashes VALUES ('old', 'u1', 'steps.0', 11), ('old', 'u2', 'steps.0', 22);
"""


def test_a_journal_from_before_the_hash_column_gains_it_and_keeps_its_hashes(
    tmp_path: Path,
) -> None:
    from cio_flows.run.changed import RequestHashes

    path = tmp_path / "journal.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_OUTCOMES)
    with Journal(path) as journal:
        journal.start_run("old", "f.yaml", "f", "us", {})
        # a resume by this version: its step's hash goes with the outcome, and wins
        journal.record("old", "u2", "steps.0", "ok", 1, request_hash=-(2**63))
        journal.record("old", "u3", "steps.0", "ok", 1, request_hash=2**63 - 1)
        journal.finish_run("old", summary("old"))
        assert journal.outcomes("old")[("u1", "steps.0")] == Outcome("ok", 1, None)
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(outcomes)")]
        stored = dict(db.execute("SELECT row_key, request_hash FROM outcomes WHERE run_id = 'old'"))
    assert columns[-1] == "request_hash"
    assert stored == {"u1": None, "u2": -(2**63), "u3": 2**63 - 1}  # 64 bits, exact
    table = RequestHashes(path)
    try:
        assert table.last_passed("f", "new") == "old"
        # as in the old format: one hash a row over its steps' (step key, hash) pairs
        fresh = RequestHashes.__new__(RequestHashes)
        fresh.db = sqlite3.connect(":memory:")
        fresh.db.executescript(OLD_OUTCOMES.replace("'old'", "'x'"))
        fresh.db.execute("ALTER TABLE outcomes ADD COLUMN request_hash INTEGER")
        fresh.db.execute("DELETE FROM request_hashes WHERE row_key = 'u2'")
        fresh.db.execute("INSERT INTO request_hashes VALUES ('x', 'u2', 'steps.0', ?)", (-(2**63),))
        fresh.db.execute(
            "INSERT INTO request_hashes VALUES ('x', 'u3', 'steps.0', ?)", (2**63 - 1,)
        )
        assert table.of_run("old") == fresh.of_run("x")
    finally:
        table.close()


def test_a_batch_of_outcomes_keeps_every_value_as_given(journal: Journal) -> None:
    """Outcomes reach SQLite as one JSON array: text that looks like JSON or numbers, quotes,
    NUL, newlines and non-ASCII come back unchanged, NULL stays NULL."""
    journal.start_run("r1", "f.yaml", "f", "us", {})
    awkward = ['{"a": 1}', "42", "null", 'say "hi"\n\\', "nul\x00byte", "日本語 ✓", "", "[1]"]
    for number, text in enumerate(awkward):
        journal.record("r1", text or "-", f"steps.{number}", "failed", number, text, [text])
    journal.flush()
    outcomes = journal.outcomes("r1")
    for number, text in enumerate(awkward):
        assert outcomes[(text or "-", f"steps.{number}")] == Outcome("failed", number, text, [text])
