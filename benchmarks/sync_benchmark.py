"""Sync benchmark: cio-flows (row by row and batched) against the official Customer.io clients.

    .venv/bin/python benchmarks/sync_benchmark.py [--rows 20000] [--latency-ms 50] [--rate 100]
                                                  [--only NAME[,NAME]] [--million] [--strict]

Starts benchmarks/counting_server.py in its own process (latency on every answer, a token bucket
per API family answering 429 + Retry-After, optional 503s) and runs each contender on the same
rows, each in a fresh child process against freshly reset counts. Prints delivered events/s,
requests, 429s, losses, duplicates and peak memory per contender, the ratios between them, and
PASS/FAIL for the issue's targets. See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import contenders
import requests
import workload

HERE = Path(__file__).resolve().parent
MILLION = 1_000_000


@dataclass
class Contender:
    name: str
    label: str
    run: Callable[[dict[str, Any]], dict[str, Any]]  # a function of contenders.py
    rows: int
    params: dict[str, Any] = field(default_factory=dict)
    error_rate: float = 0.0
    needs_batch: bool = False
    server_rate: float | None = None  # the server's limit when not --rate
    sends: bool = True  # False: nothing reaches the server (plan, the CPU floor, cold start)


def lineup(args: argparse.Namespace) -> list[Contender]:
    """Every contender, in running order, with the rows it gets."""
    rate, rows = args.rate, args.rows
    cio = contenders.cio_flows
    row_by_row = {"family": "track", "batch": False, "client_rate": rate}
    batched = {"family": "pipelines", "batch": True, "client_rate": rate}
    # Pacing above the server's limit, with enough workers to outrun it at this latency, so
    # the server's 429s, not the client's pacing, enforce the limit.
    faulty = {"client_rate": rate * 1.5, "workers": args.workers * 2}
    return [
        Contender(
            "official-track",
            "customerio Track client (sequential)",
            contenders.official_track,
            min(rows, args.sequential_rows),
        ),
        Contender(
            "official-pipelines",
            "customerio.analytics client (its queue)",
            contenders.official_pipelines,
            rows,
        ),
        Contender(
            "cio-rows", "cio-flows row by row (Track)", cio, min(rows, args.paced_rows), row_by_row
        ),
        Contender(
            "cio-batch", "cio-flows batched (Pipelines)", cio, rows, batched, needs_batch=True
        ),
        Contender(
            "plan",
            "cio-flows plan --format jsonl (CLI)",
            contenders.cio_plan,
            rows,
            batched,
            sends=False,
        ),
        Contender(
            "floor",
            "CPU floor (hand-written batches)",
            contenders.cpu_floor,
            rows,
            sends=False,
        ),
        Contender("cold", "cio-flows --help (best of 5)", contenders.cold_start, 0, sends=False),
        Contender(
            "faults-rows",
            f"row by row, {args.error_rate:.0%} 503 + 429s",
            cio,
            min(rows, args.fault_rows),
            {**row_by_row, **faulty},
            args.error_rate,
        ),
        Contender(
            "faults-batch",
            f"batched, {args.error_rate:.0%} 503 + 429s at {args.batch_fault_rate:g}/s",
            cio,
            rows,
            {**batched, **faulty},
            args.error_rate,
            needs_batch=True,
            # Batches are so few that --rate never binds: a tight limit makes the 429s happen.
            server_rate=args.batch_fault_rate,
        ),
        Contender(
            "million", "cio-flows batched, 1,000,000 rows", cio, MILLION, batched, needs_batch=True
        ),
    ]


def selected(all_contenders: list[Contender], args: argparse.Namespace) -> list[Contender]:
    if args.only:
        wanted = {name.strip() for item in args.only for name in item.split(",")}
        unknown = wanted - {c.name for c in all_contenders}
        if unknown:
            sys.exit(f"--only: unknown contender(s) {', '.join(sorted(unknown))}")
        return [c for c in all_contenders if c.name in wanted]
    return [c for c in all_contenders if c.name != "million" or args.million]


def default_workers() -> int:
    """What a user gets without choosing: the engine's own default."""
    from cio_flows.run.prepare import RunOptions

    return RunOptions().workers


def batching_available() -> bool:
    """The lead adds RunOptions.batch; until then batched contenders are 'not available'."""
    from dataclasses import fields

    from cio_flows.run.prepare import RunOptions

    return "batch" in {f.name for f in fields(RunOptions)}


# --- the server and the children ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """counting_server.py in its own process, so its CPU never competes with a contender's GIL."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        script = HERE / "counting_server.py"
        self.process = subprocess.Popen([sys.executable, str(script), "--port", port], cwd=HERE)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the counting server exited at start")
            try:
                requests.get(f"{self.url}/_bench/health", timeout=0.5).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("the counting server did not come up")

    def reset(self, **spec: Any) -> None:
        requests.post(f"{self.url}/_bench/reset", json=spec, timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/_bench/stats", timeout=30)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def run_child(fn: Callable[[dict[str, Any]], dict[str, Any]], params: dict[str, Any]) -> dict:
    """fn(params) in a fresh spawned process: its peak RSS is that contender's alone."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, params).result()


# --- running ---------------------------------------------------------------------------------------


@dataclass
class Result:
    contender: Contender
    outcome: dict[str, Any] = field(default_factory=dict)  # from the child
    server: dict[str, Any] = field(default_factory=dict)  # from the counting server
    unavailable: str | None = None  # why it did not run, or how it crashed
    crashed: bool = False
    rounds: list[float | None] = field(default_factory=list)  # events/s of each round (--repeat)

    def get(self, key: str, default: Any = None) -> Any:
        return self.outcome.get(key, self.server.get(key, default))

    @property
    def events_per_s(self) -> float | None:
        if "delivered" not in self.server or not self.outcome.get("elapsed"):
            return None
        return self.server["delivered"] / self.outcome["elapsed"]

    @property
    def ok_requests_per_s(self) -> float | None:
        """Accepted requests per second between the first and the last accepted one."""
        window, count = self.server.get("ok_window", 0), self.server.get("ok_requests", 0)
        return (count - 1) / window if window and count > 1 else None

    def status_count(self, test: Callable[[int], bool]) -> int:
        return sum(n for code, n in self.server.get("statuses", {}).items() if test(int(code)))


class Bench:
    def __init__(self, args: argparse.Namespace, directory: Path) -> None:
        self.args = args
        self.directory = directory
        self.files: dict[int, Path] = {}
        self.flow = workload.write_flow(directory, self.data(args.rows))
        self.server = Server()
        self.run_id = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "bench0"
        self.runs = 0  # a run id, and so a journal, of its own for every run (--repeat)

    def data(self, rows: int) -> Path:
        """A CSV of exactly `rows` rows, written once per size."""
        if rows not in self.files:
            self.files[rows] = workload.write_rows(self.directory / f"rows_{rows}.csv", rows)
        return self.files[rows]

    def run(self, contender: Contender) -> Result:
        args = self.args
        self.runs += 1
        params = {
            "url": self.server.url,
            "data": str(self.data(contender.rows)),
            "rows": contender.rows,
            "flow": str(self.flow),
            "workers": args.workers,
            "run_id": f"{self.run_id}{contender.name}{self.runs}",
            **contender.params,
        }
        self.server.reset(
            rows=contender.rows,
            latency=args.latency_ms / 1000,
            rate=contender.server_rate or args.rate,
            error_rate=contender.error_rate,
            seed=args.seed,
        )
        try:
            outcome = run_child(contender.run, params)
        except Exception as exc:  # one broken contender must not hide the others' numbers
            return Result(contender, unavailable=f"crashed: {exc!r}"[:300], crashed=True)
        server = self.server.stats() if contender.sends else {}
        return Result(contender, outcome, server)

    def close(self) -> None:
        self.server.close()


def run_all(args: argparse.Namespace, chosen: list[Contender]) -> list[Result]:
    """Every contender, `--repeat` rounds of all of them in turn (a round's contenders run
    moments apart); each contender's result is its best round, as timeit takes the fastest:
    a slower round measures what else the machine did meanwhile (this 2-core VM's CPU time
    for the same work varies by up to 30% between seconds)."""
    batch_ok = batching_available()
    rounds: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="cio-sync-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            for number in range(args.repeat):
                for contender in chosen:
                    if contender.needs_batch and not batch_ok:
                        unavailable = "not available (no RunOptions.batch)"
                        rounds.setdefault(contender.name, []).append(
                            Result(contender, unavailable=unavailable)
                        )
                        continue
                    which = f" round {number + 1} of {args.repeat}" if args.repeat > 1 else ""
                    print(f"running {contender.name} ({contender.rows:,} rows){which} ...")
                    result = bench.run(contender)
                    print(f"  {result.unavailable or summary_line(result)}", flush=True)
                    rounds.setdefault(contender.name, []).append(result)
        finally:
            bench.close()
    return [best(results) for results in rounds.values()]


def best(results: list[Result]) -> Result:
    """The round with the most events/s (or the shortest, for what sends nothing); one that
    crashed or lost events wins nothing over one that did not."""
    ran = [r for r in results if not r.unavailable]
    if not ran:
        return results[0]

    def score(r: Result) -> tuple[bool, float]:
        complete = not r.server or r.get("losses", 0) == 0
        speed = r.events_per_s if r.server else -r.outcome.get("elapsed", 0.0)
        return complete, speed or 0.0

    chosen = max(ran, key=score)
    chosen.rounds = [r.events_per_s for r in results]
    return chosen


# --- reporting -------------------------------------------------------------------------------------


def _num(value: Any, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def summary_line(result: Result) -> str:
    out = result.outcome
    if "planned_rows" in out:
        rows_per_s = out["planned_rows"] / out["elapsed"]
        return f"{rows_per_s:,.0f} rows/s planned in {out['elapsed']:.1f} s"
    if "floor_events" in out:
        return f"{out['cpu'] / out['floor_events'] * 1e6:.1f} us of CPU per event"
    if "help_s" in out:
        return f"--help {out['help_s']:.2f} s, validate {out['validate_s']:.2f} s"
    return (
        f"{result.get('delivered', 0):,} of {result.get('expected', 0):,} events in "
        f"{result.outcome['elapsed']:.1f} s, {result.get('requests', 0):,} requests"
    )


def notes(result: Result) -> str:
    out = result.outcome
    parts = []
    if "exit_code" in out:
        parts.append(f"exit {out['exit_code']}")
        if out.get("failed_rows"):
            parts.append(f"{out['failed_rows']} failed rows")
    if out.get("queue_refused"):
        parts.append(f"queue full: {out['queue_refused']:,} dropped")
    if out.get("client_errors"):
        parts.append(f"{out['client_errors']:,} client errors")
    if "planned_rows" in out:
        parts.append(f"{out['planned_rows'] / out['elapsed']:,.0f} rows/s")
        parts.append(f"{out['planned_requests']:,} requests listed")
    if out.get("processes", 1) > 1:
        parts.append(f"{out['processes'] - 1} worker processes")
    if "tree_pss_mb" in out:
        parts.append(f"all processes {out['tree_pss_mb']:.0f} MB PSS")
    if "floor_events" in out:
        parts.append(f"{out['cpu'] / out['floor_events'] * 1e6:.1f} us CPU/event")
    if "help_s" in out:
        parts.append(f"validate {out['validate_s']:.2f} s")
    if len(result.rounds) > 1 and all(result.rounds):
        each = " / ".join(f"{value:,.0f}" for value in result.rounds if value)
        parts.append(f"best of {len(result.rounds)} rounds: {each} events/s")
    return ", ".join(parts)


COLUMNS = (
    ("rows", 9),
    ("secs", 6),
    ("events/s", 9),
    ("requests", 9),
    ("ok req/s", 8),
    ("429s", 6),
    ("5xx", 5),
    ("losses", 7),
    ("dups", 5),
    ("peak MB", 7),
    ("cpu s", 6),
    ("srv cpu", 7),
)


def cells(r: Result) -> list[str]:
    sends = bool(r.server)  # plan, floor: nothing sent, only time and memory mean something
    return [
        _num(r.contender.rows),
        _num(r.outcome["elapsed"], ".2f" if r.contender.name == "cold" else ".1f"),
        _num(r.events_per_s) if sends else "-",
        _num(r.get("requests")) if sends else "-",
        _num(r.ok_requests_per_s, ".1f") if sends else "-",
        _num(r.status_count(lambda c: c == 429)) if sends else "-",
        _num(r.status_count(lambda c: c >= 500)) if sends else "-",
        _num(r.get("losses")) if sends else "-",
        _num(r.get("duplicates")) if sends else "-",
        _num(r.outcome["peak_mb"], ".0f"),
        _num(r.outcome.get("cpu"), ".1f"),
        _num(r.get("server_cpu"), ".1f") if sends else "-",
    ]


def table(results: list[Result]) -> str:
    width = max(len("contender"), *(len(r.contender.label) for r in results))
    header = f"{'contender':<{width}}  " + "  ".join(f"{n:>{w}}" for n, w in COLUMNS) + "  notes"
    lines = [header, "-" * len(header)]
    for r in results:
        if r.unavailable:
            lines.append(f"{r.contender.label:<{width}}  {r.unavailable}")
            continue
        row = "  ".join(f"{c:>{w}}" for c, (_, w) in zip(cells(r), COLUMNS, strict=True))
        lines.append(f"{r.contender.label:<{width}}  {row}  {notes(r)}".rstrip())
    return "\n".join(lines)


def error_lines(results: list[Result]) -> list[str]:
    lines = []
    for r in results:
        for message, count in r.outcome.get("errors", []):
            lines.append(f"  {r.contender.name}: {count:,} x {message}")
    return lines


def ratio_lines(by_name: dict[str, Result]) -> list[str]:
    pairs = (
        ("cio-rows", "official-track", "row by row / official Track client"),
        ("cio-batch", "official-pipelines", "batched / official Pipelines client"),
        ("cio-batch", "official-track", "batched / official Track client"),
    )
    lines = []
    for mine, theirs, text in pairs:
        a, b = by_name.get(mine), by_name.get(theirs)
        if a and b and a.events_per_s and b.events_per_s:
            line = f"  {text:<40} {a.events_per_s / b.events_per_s:6.1f}x events/s"
            if len(a.rounds) > 1 and len(a.rounds) == len(b.rounds):
                each = [f"{x / y:.1f}x" for x, y in zip(a.rounds, b.rounds, strict=True) if x and y]
                line += f"  (best of each; round by round {', '.join(each)})"
            lines.append(line)
    batch, floor = by_name.get("cio-batch"), by_name.get("floor")
    if batch and floor and batch.outcome and floor.outcome and batch.get("delivered"):
        mine = batch.outcome["cpu"] / batch.get("delivered") * 1e6
        least = floor.outcome["cpu"] / floor.outcome["floor_events"] * 1e6
        lines.append(
            f"  {'batched CPU per event / CPU floor':<40} {mine / least:6.1f}x"
            f"  ({mine:.1f} us against {least:.1f} us: the rest is templates, validation,"
            " ids, HTTP, events, journal)"
        )
    return lines


Verdict = tuple[str, str]  # (PASS | FAIL | SKIP, explanation)


def _ran(by_name: dict[str, Result], *names: str) -> Verdict | None:
    """Why a target cannot be judged, or None when all its contenders ran."""
    for name in names:
        result = by_name.get(name)
        if result is None:
            return "SKIP", f"{name} not run" + (" (use --million)" if name == "million" else "")
        if result.crashed:
            return "FAIL", f"{name} crashed"
        if result.unavailable:
            return "SKIP", f"{name} {result.unavailable}"
    return None


def _verdict(ok: bool, text: str) -> Verdict:
    return ("PASS" if ok else "FAIL"), text


def complete(r: Result) -> bool:
    return r.get("losses") == 0 and r.get("exit_code", 0) == 0


def target_rows(by_name, args) -> Verdict:
    r = by_name["cio-rows"]
    rate = r.ok_requests_per_s or 0.0
    ok = rate >= 0.9 * args.rate and complete(r) and not r.get("failed_rows")
    return _verdict(
        ok,
        f"{rate:.1f} req/s sustained (>= {0.9 * args.rate:g}), "
        f"{r.status_count(lambda c: c == 429)} 429s, {r.get('failed_rows')} failed rows, "
        f"{r.get('losses')} lost",
    )


def target_batch(by_name, args) -> Verdict:
    mine, theirs = by_name["cio-batch"], by_name["official-pipelines"]
    ratio = (mine.events_per_s or 0) / (theirs.events_per_s or float("inf"))
    text = (
        f"{ratio:.1f}x the official Pipelines client's events/s (>= 30x), "
        f"{mine.get('delivered'):,} of {mine.get('expected'):,} events delivered, "
        f"{mine.get('duplicates')} duplicates"
    )
    if mine.contender.rows < 50_000:
        text += " (the issue's figure is --rows 50000)"
    once = complete(mine) and mine.get("duplicates") == 0
    return _verdict(ratio >= 30 and once, text)


def target_million(by_name, args) -> Verdict:
    r = by_name["million"]
    out = r.outcome
    peak = out.get("tree_pss_mb", out["peak_mb"])
    text = (
        f"peak {peak:.0f} MB for {out.get('processes', 1)} process(es) together (PSS, < 150;"
        f" RSS summed {out.get('tree_rss_mb', peak):.0f} MB, the run's own {out['peak_mb']:.0f}"
        f" MB), {r.get('delivered'):,} of {r.get('expected'):,} delivered,"
        f" {r.get('duplicates')} duplicates"
    )
    return _verdict(peak < 150 and complete(r) and r.get("duplicates") == 0, text)


def target_plan(by_name, args) -> Verdict:
    out = by_name["plan"].outcome
    rate = out["planned_rows"] / out["elapsed"]
    text = f"{rate:,.0f} rows/s over {out['planned_rows']:,} rows, start-up included (>= 20,000)"
    ok = rate >= 20_000 and out["exit_code"] == 0
    run = by_name.get("cio-batch")
    if run and run.server and run.contender.rows == by_name["plan"].contender.rows:
        sent = run.status_count(lambda c: c < 300)  # accepted requests: each batch once
        text += f"; lists {out['planned_requests']:,} requests, the run sent {sent:,}"
        ok = ok and out["planned_requests"] == sent
    else:
        text += f"; lists {out['planned_requests']:,} requests (run cio-batch to compare)"
    return _verdict(ok, text)


def target_cold(by_name, args) -> Verdict:
    out = by_name["cold"].outcome
    text = f"--help {out['help_s']:.2f} s (<= 0.3), validate {out['validate_s']:.2f} s"
    return _verdict(out["help_s"] <= 0.3, text)


def target_faults(by_name, args, name: str) -> Verdict:
    r = by_name[name]
    text = (
        f"{r.get('delivered'):,} of {r.get('expected'):,} delivered, exit {r.get('exit_code')}, "
        f"{r.status_count(lambda c: c >= 500)} 503s and {r.status_count(lambda c: c == 429)} 429s answered"
    )
    if not r.status_count(lambda c: c == 429):
        text += " (no 429 happened: the limit was not exercised)"
    return _verdict(complete(r), text)


TARGETS = (
    ("row by row >= 90% of the rate, no failures", ("cio-rows",), target_rows),
    (
        "batched >= 30x official Pipelines, every event once",
        ("cio-batch", "official-pipelines"),
        target_batch,
    ),
    ("1,000,000 rows under 150 MB peak, all processes", ("million",), target_million),
    ("plan --format jsonl >= 20,000 rows/s, as many requests as the run", ("plan",), target_plan),
    ("cio-flows --help <= 0.3 s", ("cold",), target_cold),
    (
        "faults row by row: all delivered, exit 0",
        ("faults-rows",),
        lambda b, a: target_faults(b, a, "faults-rows"),
    ),
    (
        "faults batched: all delivered, exit 0",
        ("faults-batch",),
        lambda b, a: target_faults(b, a, "faults-batch"),
    ),
)


def verdicts(results: list[Result], args: argparse.Namespace) -> list[tuple[str, str, str]]:
    by_name = {r.contender.name: r for r in results}
    out = []
    for title, needs, judge in TARGETS:
        status, text = _ran(by_name, *needs) or judge(by_name, args)
        out.append((status, title, text))
    return out


def report(results: list[Result], args: argparse.Namespace) -> bool:
    """Print everything; True when no target failed."""
    print()
    print(
        f"latency {args.latency_ms:g} ms, limit {args.rate:g} requests/s per family, "
        f"workers {args.workers}, {multiprocessing.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print(table(results))
    errors = error_lines(results)
    if errors:
        print("\nmost common errors:")
        print("\n".join(errors))
    ratios = ratio_lines({r.contender.name: r for r in results})
    if ratios:
        print("\nratios (delivered events/s, same run):")
        print("\n".join(ratios))
    print("\ntargets:")
    judged = verdicts(results, args)
    for status, title, text in judged:
        print(f"  {status}  {title}: {text}")
    return all(status != "FAIL" for status, _, _ in judged)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", type=int, default=50_000, help="rows per contender (default 50000)"
    )
    parser.add_argument(
        "--paced-rows",
        type=int,
        default=2_000,
        help="at most this many rows for cio-flows row by row (100 req/s: 2000 rows ~ 40 s)",
    )
    parser.add_argument(
        "--sequential-rows",
        type=int,
        default=300,
        help="at most this many rows for the official Track client (~19 ops/s)",
    )
    parser.add_argument(
        "--fault-rows",
        type=int,
        default=1_000,
        help="at most this many rows for the row-by-row fault run",
    )
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every answer")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="requests/s per API family before 429s"
    )
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.10,
        help="share of requests answered 503 in the fault runs",
    )
    parser.add_argument(
        "--batch-fault-rate",
        type=float,
        default=10.0,
        help="the server's limit in the batched fault run (default 10 requests/s, the App API's): "
        "batches are too few for --rate to bind",
    )
    parser.add_argument(
        "--workers", type=int, help="cio-flows workers (default: RunOptions' own default)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the 503 faults")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only these contenders (repeat or comma-separate): official-track, official-pipelines, cio-rows, cio-batch, plan, floor, cold, faults-rows, faults-batch, million",
    )
    parser.add_argument(
        "--million", action="store_true", help="also run cio-flows on 1,000,000 rows (slow)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of every contender; each is judged by its best round (default 1)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workers = args.workers or default_workers()
    results = run_all(args, selected(lineup(args), args))
    passed = report(results, args)
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
