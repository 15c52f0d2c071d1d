"""What each contender does, run inside its own child process (see sync_benchmark.run_child).

Every function takes a plain dict of parameters and returns a plain dict: `elapsed` (seconds of
sending, from the first call to the last answer or flush), `peak_mb` (the child's peak RSS) and
whatever else the contender can say about itself. Heavy imports stay inside the functions so an
official client's child never loads cio-flows, and its peak memory is its own.
"""

from __future__ import annotations

import logging
import re
import resource
import time
from collections import Counter
from pathlib import Path
from typing import Any

from workload import EVENT, properties, read_rows, traits

SITE_ID, TRACK_KEY, PIPELINES_KEY = "bench-site", "bench-track-key", "bench-pipelines-key"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _tree(pid: int) -> list[int]:
    """pid and every process below it (a run's worker processes), from each thread's children
    file (Linux 3.5+): a sample reads a few small files, not every process's stat in /proc,
    which took 1.4 ms a sample, CPU the measured run on 2 cores did not get."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in children.read_text().split()]
            except (OSError, ValueError):  # gone meanwhile
                continue
    return found


def _memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of a process in kB: PSS counts a page shared by k processes as 1/k of it."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = dict(line.split(":", 1) for line in text.splitlines()[1:] if ":" in line)
    return int(values["Pss"].split()[0]), int(values["Rss"].split()[0])


class TreeMemory:
    """The peak memory of this process and its children together, sampled every 50 ms:
    PSS summed (what the processes occupy together: pages a forked worker shares with its
    parent count once) and RSS summed (shared pages counted in every process).

    The sampler is a process of its own, left out of the sums: a thread here would be one more
    thread in the measured process, where a run forks its workers only when it has none.
    """

    def __init__(self, interval: float = 0.05) -> None:
        import multiprocessing
        import os

        context = multiprocessing.get_context("fork")
        self._results, sender = context.Pipe(duplex=False)
        self._stop = context.Event()
        self._sampler = context.Process(
            target=_sample_tree, args=(os.getpid(), interval, self._stop, sender), daemon=True
        )
        self._sampler.start()
        sender.close()

    def finish(self) -> dict[str, Any]:
        self._stop.set()
        peak_pss, peak_rss, processes = self._results.recv()
        self._sampler.join()
        return {
            "tree_pss_mb": peak_pss / 1024,
            "tree_rss_mb": peak_rss / 1024,
            "processes": processes,
        }


def _sample_tree(pid: int, interval: float, stop: Any, results: Any) -> None:
    import os

    me = os.getpid()
    peak_pss = peak_rss = 0
    processes = 1
    while not stop.wait(interval):
        pids = [p for p in _tree(pid) if p != me]
        pss, rss = map(sum, zip(*(_memory_kb(p) for p in pids), strict=True))
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        processes = max(processes, len(pids))
    results.send((peak_pss, peak_rss, processes))


class Clock:
    """Wall and CPU seconds of the sending part only (imports and setup excluded)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time() + _children_cpu()

    def finish(self, **extra: Any) -> dict[str, Any]:
        return {
            "elapsed": time.perf_counter() - self.wall,
            # worker processes included (a run's workers are waited for before it returns)
            "cpu": time.process_time() + _children_cpu() - self.cpu,
            **extra,
            "peak_mb": _peak_mb(),
        }


class ErrorTally:
    """A run listener keeping the most common step errors, row numbers folded together."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, event: Any) -> None:
        error = getattr(event, "error", None)
        if error:
            self.counts[re.sub(r"\brow \d+", "row N", error)[:200]] += 1

    def top(self, n: int = 3) -> list[tuple[str, int]]:
        return self.counts.most_common(n)


# --- the official clients --------------------------------------------------------------------


def _fails(error: type[Exception], call, *args: Any, **kwargs: Any) -> int:
    """1 when the call raised `error` (how the Track client reports a failed request), else 0."""
    try:
        call(*args, **kwargs)
    except error:
        return 1
    return 0


def official_track(params: dict[str, Any]) -> dict[str, Any]:
    """customerio.track.CustomerIO: one identify and one track per row, one request at a time."""
    # Not from the package root: customerio-cdp-analytics may have replaced its __init__.py.
    from customerio.client_base import CustomerIOException
    from customerio.track import CustomerIO

    client = CustomerIO(SITE_ID, TRACK_KEY)
    # It always builds an https:// URL; point it at the server and give plain http the same
    # retrying adapter it mounts for https, so it behaves as it would against Customer.io.
    client.base_url = params["url"] + "/api/v1"
    client.http.mount("http://", client.http.get_adapter("https://track.customer.io"))
    errors = 0
    clock = Clock()
    for record in read_rows(Path(params["data"]), params["rows"]):
        uid = record["id"]
        errors += _fails(CustomerIOException, client.identify, uid, **traits(record))
        errors += _fails(CustomerIOException, client.track, uid, EVENT, properties(record))
    client.close()
    return clock.finish(client_errors=errors)


def official_pipelines(params: dict[str, Any]) -> dict[str, Any]:
    """customerio.analytics.Client with its defaults: a 10,000-event queue and one consumer."""
    from customerio.analytics import Client

    # It logs one warning per event its full queue turns away; we count them instead.
    logging.getLogger("customerio").disabled = True
    failed_uploads: list[int] = []
    client = Client(
        PIPELINES_KEY,
        host=params["url"],
        on_error=lambda _exc, batch: failed_uploads.append(len(batch)),
    )
    refused = 0
    clock = Clock()
    for record in read_rows(Path(params["data"]), params["rows"]):
        uid = record["id"]
        refused += not client.identify(user_id=uid, traits=traits(record))[0]
        refused += not client.track(user_id=uid, event=EVENT, properties=properties(record))[0]
    client.shutdown()  # flush the queue and stop the consumer: nothing is left behind
    return clock.finish(queue_refused=refused, client_errors=sum(failed_uploads))


# --- cio-flows -------------------------------------------------------------------------------


def _cio_options(params: dict[str, Any]):
    from dataclasses import fields, replace

    from cio_flows.run.prepare import RunOptions
    from cio_flows.wire.ratelimit import RateLimits
    from cio_flows.wire.transport import TransportSettings

    url = params["url"]
    environ = {"CUSTOMERIO_TRACK_URL": url, "CUSTOMERIO_PIPELINES_URL": url}
    if params["family"] == "pipelines":
        environ["CUSTOMERIO_PIPELINES_KEY"] = PIPELINES_KEY
    else:  # Track credentials only: identify and track go to the Track API
        environ.update(CUSTOMERIO_SITE_ID=SITE_ID, CUSTOMERIO_TRACK_TOKEN=TRACK_KEY)
    rate = params["client_rate"]
    options = RunOptions(
        data=Path(params["data"]),
        # a journal of its own: the user's default one may hold millions of earlier outcomes,
        # which every run reads once for damage before sending
        journal=Path(params["data"]).parent / f"journal-{params['run_id']}.db",
        run_id=params["run_id"],
        workers=params["workers"],
        environ=environ,
        transport=TransportSettings(
            rate_limits=RateLimits.defaults({"track": rate, "pipelines": rate})
        ),
    )
    if "batch" in {f.name for f in fields(RunOptions)}:
        options = replace(options, batch=params["batch"])
    elif params["batch"]:
        raise RuntimeError("RunOptions has no batch field: batching is not available")
    return options


def cio_flows(params: dict[str, Any]) -> dict[str, Any]:
    """run_flow over the data file, as the CLI would; the only listener tallies errors."""
    from cio_flows.api import run_flow

    options = _cio_options(params)
    errors = ErrorTally()
    memory = TreeMemory()
    clock = Clock()
    summary = run_flow(params["flow"], options, [errors])
    return clock.finish(
        **memory.finish(),
        errors=errors.top(),
        exit_code=summary.exit_code,
        failed_rows=len(summary.failed_rows),
        client_requests=summary.requests,
        client_retries=summary.retries,
        client_throttled=summary.throttled,
    )


def cio_plan(params: dict[str, Any]) -> dict[str, Any]:
    """`cio-flows plan FLOW --format jsonl` as a user runs it: a fresh process, start-up included;
    one JSON line per request the run would send (batches as the run sends them)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, **_environ(params)}
    command = [sys.executable, "-c", "from cio_flows.cli import main; main()"]
    command += ["plan", params["flow"], "--data", params["data"], "--format", "jsonl"]
    clock = Clock()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    outcome = clock.finish(exit_code=done.returncode)
    lines = done.stdout.splitlines()
    outcome.update(
        planned_rows=params["rows"],
        planned_requests=sum(b'"method"' in line for line in lines),
        plan_bytes=len(done.stdout),
        peak_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        cpu=_children_cpu(),
    )
    if done.returncode:
        outcome["errors"] = [(done.stderr.decode(errors="replace")[-300:], 1)]
    return outcome


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _environ(params: dict[str, Any]) -> dict[str, str]:
    return {"CUSTOMERIO_PIPELINES_URL": params["url"], "CUSTOMERIO_PIPELINES_KEY": PIPELINES_KEY}


def cpu_floor(params: dict[str, Any]) -> dict[str, Any]:
    """The least work that sends the same batches: parse the CSV, build each identify and track
    by hand, derive the same messageId (uuid5), encode with json, join 500 items a batch.
    No templates, no validation, no journal, nothing sent: what the machine needs at minimum."""
    import csv
    import hashlib
    import json
    import uuid

    namespace = uuid.UUID("8d6f8c4e-3f7a-5a51-9b52-6b3c2c1e9a10").bytes
    run_id = params["run_id"]

    def message_id(row_key: str, step: str) -> str:
        digest = bytearray(hashlib.sha1(namespace + f"{run_id}/{row_key}/{step}".encode()).digest())
        digest[6] = (digest[6] & 0x0F) | 0x50
        digest[8] = (digest[8] & 0x3F) | 0x80
        h = digest[:16].hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    clock = Clock()
    size = 0
    identify: list[str] = []
    track: list[str] = []
    with open(params["data"], newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            uid = record["id"]
            identify.append(dumps({"type": "identify", "userId": uid, "traits": traits(record),
                                   "messageId": message_id(uid, "steps.0")}))  # fmt: skip
            track.append(dumps({"type": "track", "userId": uid, "event": EVENT,
                                "properties": properties(record),
                                "messageId": message_id(uid, "steps.1")}))  # fmt: skip
            if len(identify) == 500:
                for items in (identify, track):
                    size += len(('{"batch":[' + ",".join(items) + "]}").encode())
                identify, track = [], []
    for items in (identify, track):
        size += len(('{"batch":[' + ",".join(items) + "]}").encode()) if items else 0
    return clock.finish(floor_events=2 * params["rows"], floor_bytes=size)


def cold_start(params: dict[str, Any]) -> dict[str, Any]:
    """`cio-flows --help` and `cio-flows validate` of a small flow: best wall time of five."""
    import subprocess
    import sys
    import tempfile

    command = [sys.executable, "-c", "from cio_flows.cli import main; main()"]
    with tempfile.TemporaryDirectory() as tmp:
        flow = Path(tmp) / "small.yaml"
        flow.write_text("version: 1\nname: small\nsteps:\n  - identify: {userId: u1}\n")
        best = {}
        for name, args in (("help_s", ["--help"]), ("validate_s", ["validate", str(flow)])):
            times = []
            for _ in range(5):
                started = time.perf_counter()
                subprocess.run(command + args, capture_output=True, check=True)
                times.append(time.perf_counter() - started)
            best[name] = min(times)
    return {"elapsed": best["help_s"], "cpu": None, "peak_mb": _peak_mb(), **best}
