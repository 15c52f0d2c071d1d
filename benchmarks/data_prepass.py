"""The cost of reading a data file whole before the first request (`DataSource.check()`).

    .venv/bin/python benchmarks/data_prepass.py [--rows 200000] [--repeat 3]

Writes one file per format (CSV, JSON Lines, JSON array) with the sync benchmark's columns, then
times, best of --repeat, in this process:

- parse:      the reference, merely reading and parsing every row (csv.DictReader, json.loads a
              line, ijson.items), nothing else;
- check:      the structure pre-pass (encoding, cell counts, JSON, one object a row);
- check+key:  what `run`, `plan` and `validate` now do before anything else: the pre-pass with
              `for_each.key: "{{ row.id }}"` rendered per row and checked unique
              (`PreparedRun` built from a flow file).

For scale, the last line compares check+key with `plan` (render and validate every step of a
row, sending nothing) on the CSV's first --plan-rows rows. Ratios are against `parse` measured in
the same run; the absolute numbers depend on the machine.
Peak memory of check+key is traced separately (tracemalloc slows the code it traces).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import ijson

from cio_flows import RunOptions, plan_flow, prepare
from cio_flows.run.rows import DataSource

COLUMNS = ["id", "email", "first_name", "plan", "country", "amount"]
FLOW = """\
version: 1
name: prepass
for_each: {key: "{{ row.id }}"}
steps:
  - identify: {userId: "{{ row.id }}", traits: {email: "{{ row.email }}"}}
"""


def record(i: int) -> dict:
    plan = ("free", "pro", "team")[i % 3]
    return dict(
        zip(COLUMNS, [f"u{i}", f"u{i}@example.com", f"Name{i}", plan, "DE", i % 997], strict=True)
    )


def write_files(directory: Path, rows: int) -> dict[str, Path]:
    paths = {fmt: directory / f"rows.{fmt}" for fmt in ("csv", "jsonl", "json")}
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(record(i).values() for i in range(rows))
    with paths["jsonl"].open("w") as handle:
        handle.writelines(json.dumps(record(i)) + "\n" for i in range(rows))
    with paths["json"].open("w") as handle:  # one object a line, as exports usually are
        handle.write("[\n")
        handle.write(",\n".join(json.dumps(record(i)) for i in range(rows)))
        handle.write("\n]\n")
    return paths


def parse_only(path: Path) -> int:
    count = 0
    if path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for _ in csv.DictReader(handle):
                count += 1
    elif path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                json.loads(line)
                count += 1
    else:
        with path.open("rb") as handle:
            for _ in ijson.items(handle, "item", use_float=True):
                count += 1
    return count


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def traced_peak(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(fmt: str, path: Path, flow: Path, rows: int, repeat: int) -> str:
    assert parse_only(path) == rows
    assert DataSource(path).check() == rows
    with_key = lambda: prepare(flow, RunOptions(data=path, environ={}))  # noqa: E731
    parse = best(lambda: parse_only(path), repeat)
    check = best(lambda: DataSource(path).check(), repeat)
    keyed = best(with_key, repeat)
    peak = traced_peak(with_key)
    size = path.stat().st_size / 1e6
    return (
        f"{fmt:<6}{rows:>10,}{size:>8.1f}{parse:>9.2f}{check:>9.2f}{check / parse:>7.2f}x"
        f"{keyed:>13.2f}{keyed / parse:>7.2f}x{rows / keyed:>11,.0f}"
        f"{peak / 1e6:>9.1f}{peak / rows:>8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many")
    parser.add_argument("--plan-rows", type=int, default=20_000, help="rows for the plan line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        flow = directory / "flow.yaml"
        flow.write_text(FLOW)
        paths = write_files(directory, args.rows)
        header = (
            f"{'format':<6}{'rows':>10}{'MB':>8}{'parse s':>9}{'check s':>9}{'ratio':>8}"
            f"{'check+key s':>13}{'ratio':>8}{'rows/s':>11}{'peak MB':>9}{'B/row':>8}"
        )
        print(f"pre-pass over {args.rows:,} rows, best of {args.repeat}; ratios against parse")
        print(header)
        print("-" * len(header))
        for fmt, path in paths.items():
            print(measure(fmt, path, flow, args.rows, args.repeat), flush=True)
        print(plan_scale(paths["csv"], flow, args))


def plan_scale(path: Path, flow: Path, args: argparse.Namespace) -> str:
    """Seconds a row for plan vs for the pre-pass with keys, over the same rows."""
    rows = min(args.rows, args.plan_rows)
    subset = path.with_name("subset.csv")
    with path.open() as source, subset.open("w") as target:
        target.writelines(line for _, line in zip(range(rows + 1), source, strict=False))
    options = RunOptions(data=subset, environ={})
    planned = best(lambda: sum(1 for _ in plan_flow(flow, options)), args.repeat)
    keyed = best(lambda: prepare(flow, options), args.repeat)
    return (
        f"plan over the CSV's first {rows:,} rows: {rows / planned:,.0f} rows/s; "
        f"check+key there is {keyed / planned:.0%} of plan's time, which includes it"
    )


if __name__ == "__main__":
    main()
