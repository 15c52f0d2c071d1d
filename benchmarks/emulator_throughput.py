"""Emulator throughput: requests/s for simple calls, against a trivial Starlette app.

    .venv/bin/python benchmarks/emulator_throughput.py [--seconds 5] [--threads 4]

Starts the emulator (demo workspace, in-memory SQLite) and a reference Starlette app whose only
endpoint returns `{}`, each in its own process under uvicorn with httptools, then hammers each
from a few threads with keep-alive `requests.Session`s. Prints req/s per scenario and the ratio
to the reference measured in the same run (the client costs the same in both, so the ratio is
the honest number; the absolute one depends on the machine). The target is >= 1,500 req/s.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def empty(request):
    return JSONResponse({})
app = Starlette(routes=[Route("/v1/identify", empty, methods=["POST", "GET"])])
"""

SITE, TRACK_KEY, PIPELINES_KEY, APP_KEY = (
    "emulator-site",
    "emulator-track-key",
    "emulator-pipelines-key",
    "emulator-app-key",
)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def start_emulator(port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "cio_flows.emulator", "--port", str(port)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)


def start_reference(port: int) -> subprocess.Popen:
    code = REFERENCE_APP + (
        "import uvicorn\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, http='httptools', "
        "access_log=False, log_level='warning', lifespan='off')\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)


Call = Callable[[requests.Session, str, int], requests.Response]


def identify(s: requests.Session, url: str, n: int) -> requests.Response:
    body = {"userId": f"bench_{n}", "traits": {"plan": "pro", "n": n}}
    return s.post(
        f"{url}/v1/identify", json=body, headers={"Authorization": _basic(PIPELINES_KEY, "")}
    )


def track_event(s: requests.Session, url: str, n: int) -> requests.Response:
    return s.post(
        f"{url}/api/v1/customers/user_{n % 300 + 1:04d}/events",
        json={"name": "viewed", "data": {"n": n}},
        headers={"Authorization": _basic(SITE, TRACK_KEY)},
    )


def attributes(s: requests.Session, url: str, n: int) -> requests.Response:
    return s.get(
        f"{url}/v1/customers/user_{n % 300 + 1:04d}/attributes",
        headers={"Authorization": f"Bearer {APP_KEY}"},
    )


def reference(s: requests.Session, url: str, n: int) -> requests.Response:
    return s.post(f"{url}/v1/identify", json={"userId": f"bench_{n}", "traits": {"plan": "pro"}})


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process (Linux /proc), to estimate server-side capacity."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_client(call: Call) -> Call:
    """The same request through http.client: far less client CPU than requests."""
    import http.client
    import json as _json

    local = threading.local()

    def run(s: requests.Session, url: str, n: int):
        prepared = call(_Capture(), url, n)
        conn = getattr(local, "conn", None)
        if conn is None:
            host, port = url.removeprefix("http://").split(":")
            conn = local.conn = http.client.HTTPConnection(host, int(port))
        body = None if prepared.json is None else _json.dumps(prepared.json)
        headers = dict(prepared.headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(prepared.method, prepared.url.split(url, 1)[1], body, headers)
        resp = conn.getresponse()
        resp.read()
        return _Status(resp.status)

    return run


class _Prepared:
    def __init__(self, method, url, json=None, headers=None):
        self.method, self.url, self.json, self.headers = method, url, json, headers


class _Capture:
    """Stands in for a Session: records the request a scenario would make."""

    def post(self, url, json=None, headers=None):
        return _Prepared("POST", url, json, headers)

    def get(self, url, headers=None):
        return _Prepared("GET", url, None, headers)


class _Status:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.text = ""


def hammer(url: str, call: Call, seconds: float, threads: int) -> float:
    counter = itertools.count()
    done = [0] * threads
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        with requests.Session() as s:
            while time.monotonic() < stop:
                r = call(s, url, next(counter))
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:100]}")
                    return
                done[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise RuntimeError(f"unexpected answer: {errors[0]}")
    return sum(done) / (time.monotonic() - started)


def measure(pid: int, url: str, call: Call, args: argparse.Namespace) -> tuple[float, float]:
    """Client-observed req/s, and requests per second of server CPU (what one core could do)."""
    before = cpu_seconds(pid)
    started = time.monotonic()
    rate = hammer(url, call, args.seconds, args.threads)
    total = rate * (time.monotonic() - started)
    used = cpu_seconds(pid) - before
    return rate, (total / used if used > 0 else float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--client",
        choices=("requests", "raw"),
        default="requests",
        help="raw: http.client keep-alive, to load the server harder with the same CPU",
    )
    args = parser.parse_args()
    wrap = raw_client if args.client == "raw" else (lambda c: c)

    emu_port, ref_port = free_port(), free_port()
    procs = [start_emulator(emu_port), start_reference(ref_port)]
    try:
        emu_url, ref_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{ref_port}"
        wait_ready(f"{emu_url}/_emulator/health")
        wait_ready(f"{ref_url}/v1/identify")
        print(
            f"cpus={os.cpu_count()} threads={args.threads} seconds={args.seconds} "
            f"client={args.client}"
        )
        ref, ref_cap = measure(procs[1].pid, ref_url, wrap(reference), args)
        print(f"{'reference Starlette {}':30s} {ref:7.0f} req/s  server capacity {ref_cap:7.0f}/s")
        for name, call in (
            ("pipelines identify (write)", identify),
            ("track event (write)", track_event),
            ("app attributes (read)", attributes),
        ):
            rate, cap = measure(procs[0].pid, emu_url, wrap(call), args)
            print(
                f"{name:30s} {rate:7.0f} req/s  server capacity {cap:7.0f}/s  "
                f"ratio {rate / ref:4.2f} (capacity ratio {cap / ref_cap:4.2f})"
            )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


if __name__ == "__main__":
    main()
