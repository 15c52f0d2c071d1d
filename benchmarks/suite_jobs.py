"""`cio-flows test --jobs N` against `--jobs 1`: a suite of flows whose every request takes a
while, through a server on 127.0.0.1 that sleeps before answering.

    .venv/bin/python benchmarks/suite_jobs.py                  # 8 flows, 400 ms, jobs 4
    .venv/bin/python benchmarks/suite_jobs.py --flows 16 --delay-ms 200 --jobs 8 --strict

Prints each run's time and the ratio; the target is jobs N under 60% of jobs 1's time with the
same results. --strict exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cio_flows.run.prepare import RunOptions
from cio_flows.scenarios import run_scenarios

TARGET = 0.6
KEYS = {"CUSTOMERIO_PIPELINES_KEY": "bench-pipelines-key"}


def sleeping_server(delay: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def write_flows(directory: Path, count: int) -> None:
    for n in range(count):
        (directory / f"flow_{n:03}.yaml").write_text(
            f"version: 1\nname: flow_{n}\nsteps:\n  - identify: {{userId: bench_{n}}}\n",
            encoding="utf-8",
        )


def timed_suite(directory: Path, url: str, jobs: int) -> tuple[float, dict[str, str]]:
    environ = {**KEYS, "CUSTOMERIO_PIPELINES_URL": url}
    options = RunOptions(journal=False, environ=environ)
    started = time.perf_counter()
    results = list(run_scenarios([directory], options, jobs=jobs))
    elapsed = time.perf_counter() - started
    return elapsed, {r.name: r.status for r in results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=400)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()

    server = sleeping_server(args.delay_ms / 1000)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            write_flows(Path(tmp), args.flows)
            one, one_results = timed_suite(Path(tmp), url, 1)
            many, many_results = timed_suite(Path(tmp), url, args.jobs)
    finally:
        server.shutdown()
        server.server_close()
    ratio = many / one
    same = one_results == many_results
    print(f"{args.flows} flows, {args.delay_ms:.0f} ms a request")
    print(f"--jobs 1          {one:7.2f} s")
    print(f"--jobs {args.jobs:<10} {many:7.2f} s")
    print(f"ratio             {ratio:7.2f}  (target < {TARGET}; same results: {same})")
    print(json.dumps({"jobs_1_s": round(one, 3), "jobs_n_s": round(many, 3), "ratio": ratio}))
    met = same and ratio < TARGET
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
