"""The sync benchmark harness still runs end to end (tiny numbers; nothing here is timed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test runs a benchmark script as a real process

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "sync_benchmark.py"


def test_sync_benchmark_prints_its_table_and_exits_0():
    args = ["--rows", "200", "--latency-ms", "0", "--only", "cio-rows", "--repeat", "2"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "events/s" in out and "losses" in out and "peak MB" in out
    assert "cio-flows row by row (Track)" in out
    # Counting is exact whatever the machine's speed: every event arrives, once.
    assert out.count("400 of 400 events") == 2  # a line per round
    assert "round 2 of 2" in out and "best of 2 rounds: " in out
    assert "targets:" in out


def test_data_prepass_benchmark_prints_its_ratios():
    script = ROOT / "benchmarks" / "data_prepass.py"
    args = ["--rows", "300", "--repeat", "1", "--plan-rows", "50"]
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[3:6]] == ["csv", "jsonl", "json"]
    assert all(" 300 " in line and "x" in line for line in lines[3:6])
    assert "of plan's time" in lines[6]


def test_analysis_reads_benchmark_prints_its_ratios():
    script = ROOT / "benchmarks" / "analysis_reads.py"
    done = subprocess.run(
        [sys.executable, str(script), "--people", "300"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "reading 300 people" in out
    assert "x faster than search + bulk attributes" in out
    assert "0 App API calls" in out.split("cached (2nd read):")[1].splitlines()[0]
    assert "targets:" in out
