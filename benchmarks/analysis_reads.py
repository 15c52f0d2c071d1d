"""Reading a whole workspace into a DataFrame: App API export vs search + bulk attributes, and
the second read from the local cache.

    .venv/bin/python benchmarks/analysis_reads.py                 # 50,000 people
    .venv/bin/python benchmarks/analysis_reads.py --people 5000   # quicker

Starts `cio-flows emulator --demo-people N --limits customerio` (App API at 10 requests/s) in a
subprocess, then reads everyone through `Workspace.connect` with the client's default rate
limits. Targets (issue 14): export read <= 20 s, cached read < 2 s with no App API call.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd

from cio_flows.analysis import Workspace
from cio_flows.emulator import DEMO_CREDENTIALS

ROOT = Path(__file__).resolve().parent.parent
EXPORT_TARGET, CACHE_TARGET = 20.0, 2.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(people: int, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "cio_flows.cli", "emulator", "--port", str(port)]
    command += ["--demo-people", str(people), "--limits", "customerio"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/health", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the emulator did not start")


def _app_calls(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_emulator/requests", timeout=30) as answer:
        entries = json.load(answer)
    entries = entries.get("requests", entries) if isinstance(entries, dict) else entries
    return sum(1 for e in entries if e.get("family") == "app")


def _timed(read):
    started = time.perf_counter()
    frame = read()
    return frame, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--skip-search", action="store_true", help="only export and cache")
    args = parser.parse_args(argv)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    process = _start(args.people, port)
    startup = time.perf_counter() - started
    env = {"CUSTOMERIO_APP_TOKEN": DEMO_CREDENTIALS.app_key, "CUSTOMERIO_APP_URL": url}
    try:
        with tempfile.TemporaryDirectory() as cache:
            connect = lambda: Workspace.connect(environ=env, cache=cache, progress=False)  # noqa: E731
            with connect() as ws:
                exported, t_export = _timed(lambda: ws.people(via="export", refresh=True))
                calls_export = ws.requests_sent
            with connect() as ws:  # a new session: the cache is on disk
                before = _app_calls(url)
                cached, t_cache = _timed(ws.people)
                cache_calls = _app_calls(url) - before
            t_search = calls_search = None
            if not args.skip_search:
                with Workspace.connect(environ=env, cache=False, progress=False) as ws:
                    searched, t_search = _timed(lambda: ws.people(via="search"))
                    calls_search = ws.requests_sent
                pd.testing.assert_frame_equal(exported, searched)
            pd.testing.assert_frame_equal(exported, cached)
    finally:
        process.terminate()
        process.wait(timeout=30)
    n = len(exported)
    print(f"reading {n:,} people ({len(exported.columns)} columns), App API at 10 requests/s")
    print(f"  emulator start (--demo-people {args.people}): {startup:6.1f} s")
    print(f"  export:                {t_export:6.1f} s  {calls_export:5d} App API calls")
    if t_search is not None:
        print(f"  search + attributes:   {t_search:6.1f} s  {calls_search:5d} App API calls")
    print(f"  cached (2nd read):     {t_cache:6.2f} s  {cache_calls:5d} App API calls")
    if t_search is not None:
        print(f"  export is {t_search / t_export:.1f}x faster than search + bulk attributes")
    print(f"  the cached read is {t_export / t_cache:.0f}x faster than the export")
    ok = t_export <= EXPORT_TARGET and t_cache < CACHE_TARGET and cache_calls == 0
    print(
        f"targets: export <= {EXPORT_TARGET:.0f} s, cached < {CACHE_TARGET:.0f} s with no App API"
        f" call: {'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
