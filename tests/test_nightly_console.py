"""Issue 23 (1, 2): a quiet console for big syncs, and report times that are wall spans."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorded, default_answer, env_for
from rich.console import Console
from support import cli

from cio_flows.reporting import ProgressReporter
from cio_flows.run.events import FAILED, OK, RowFinished, RunFinished, RunStarted, RunSummary

ROWS, VIPS = 2000, 40  # every 50th row is a VIP: 1,960 rows skip the VIP step by `when`
FAILING = {"u0100", "u1000", "u1500"}  # their VIP event is refused


def write_sync(tmp_path: Path) -> Path:
    with (tmp_path / "rows.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "email", "vip"])
        for i in range(1, ROWS + 1):
            out.writerow([f"u{i:04d}", f"u{i}@example.com", "yes" if i % 50 == 0 else "no"])
    flow = tmp_path / "sync.yaml"
    flow.write_text(
        """version: 1
name: nightly_sync
for_each:
  file: rows.csv
  key: "{{ row.id }}"
steps:
  - name: upsert
    identify:
      userId: "{{ row.id }}"
      traits: {email: "{{ row.email }}"}
  - name: vip event
    when: "{{ row.vip == 'yes' }}"
    track:
      userId: "{{ row.id }}"
      event: vip
""",
        encoding="utf-8",
    )
    return flow


def refuse_some(request: Recorded) -> tuple[int, dict[str, str], Any]:
    """The VIP event of the FAILING rows is refused; everything else succeeds."""
    body = request.body if isinstance(request.body, dict) else {}
    if body.get("event") == "vip" and body.get("userId") in FAILING:
        return 400, {}, {"errors": [{"message": "refused for the test"}]}
    return default_answer(request)


@pytest.mark.slow
def test_skips_are_summarised_failures_shown_and_times_are_spans(tmp_path, recording_server):
    recording_server.handler = refuse_some
    flow = write_sync(tmp_path)
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    env = {**os.environ, **env_for(recording_server.url)}
    done = subprocess.run(
        cli("run", str(flow), "--no-batch", "--junit", str(junit), "--report", str(report)),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) <= 60, done.stdout
    assert not any("row 1 [u0001]" in line for line in lines)  # no per-row skip line
    (skipped,) = [line for line in lines if "vip event (track) in" in line]
    assert "1,960 row(s)" in skipped and "when is false" in skipped
    failed = [line for line in lines if line.lstrip().startswith("FAILED")]
    assert len(failed) == len(FAILING)
    for key in FAILING:
        assert any(f"[{key}]" in line for line in failed)
    # The longest JUnit case is not longer than the run.
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    cases = [float(case.get("time") or 0) for case in suite.iter("testcase")]
    assert cases and max(cases) <= float(suite.get("time") or 0)
    data = json.loads(report.read_text())
    for step in data["steps"]:
        assert step["elapsed_ms"] / 1000 <= data["elapsed"]
        assert step["latency_ms"] >= 0


@pytest.mark.slow
def test_per_row_skip_lines_come_back_with_verbose(tmp_path, recording_server):
    flow = write_sync(tmp_path)
    env = {**os.environ, **env_for(recording_server.url)}
    done = subprocess.run(
        cli("run", str(flow), "-v"), env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    skips = [line for line in done.stdout.splitlines() if "skipped row" in line]
    assert len(skips) == ROWS - VIPS


def test_status_lines_without_a_terminal_are_spaced_in_time() -> None:
    now = [0.0]
    lines: list[str] = []
    reporter = ProgressReporter(
        console=Console(file=io.StringIO()), status=lines.append, clock=lambda: now[0]
    )
    reporter(RunStarted("r1", "sync", "sync.yaml", "us", {}, rows=1000))
    for row in range(1, 1001):
        now[0] = row * 0.01  # 100 rows/s: 10 s in all
        reporter(RowFinished(row, str(row), FAILED if row == 3 else OK))
    reporter(RunFinished(RunSummary("r1", "sync")))
    assert len(lines) == 2  # at 5 s and at 10 s: at most one per 5 s
    assert lines[0] == "progress: 500/1,000 rows (50%), 1 failed, 100 rows/s, ETA 0:00:05"


def test_the_bar_has_the_total_from_the_run_and_the_true_rate() -> None:
    out = io.StringIO()
    reporter = ProgressReporter(console=Console(file=out, force_terminal=True, width=150))
    reporter(RunStarted("r1", "sync", "sync.yaml", "us", {}, rows=3))
    for row in (1, 2, 3):
        reporter(RowFinished(row, str(row), OK))
    reporter(RunFinished(RunSummary("r1", "sync")))
    text = out.getvalue()
    assert "3/3" in text and "ETA" in text and "rows/s" in text
