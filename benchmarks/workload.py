"""The rows every contender sends, the flow cio-flows runs over them, and how an event is named.

Row i is the person `u<i>`; each row yields exactly two events, an identify and a track named
EVENT, so the counting server can key every event by (kind, row index) whatever client sent it.
Stdlib only: this module is imported by the server and by every child process.
"""

from __future__ import annotations

import csv
from pathlib import Path

EVENT = "bench_purchase"
KINDS = ("identify", "track")  # event key = row index * 2 + position in KINDS
EVENTS_PER_ROW = len(KINDS)
COLUMNS = ("id", "email", "first_name", "plan", "country", "amount")
_PLANS = ("free", "starter", "pro", "enterprise")
_COUNTRIES = ("US", "DE", "FR", "BR", "JP", "IN")
_NAMES = ("Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis")

FLOW = """\
version: 1
name: sync_benchmark
description: one identify and one track per row (benchmarks/sync_benchmark.py)
for_each:
  file: {data}
  key: "{{{{ row.id }}}}"
steps:
  - name: identify
    identify:
      userId: "{{{{ row.id }}}}"
      traits:
        email: "{{{{ row.email }}}}"
        first_name: "{{{{ row.first_name }}}}"
        plan: "{{{{ row.plan }}}}"
        country: "{{{{ row.country }}}}"
  - name: track
    track:
      userId: "{{{{ row.id }}}}"
      event: {event}
      properties:
        plan: "{{{{ row.plan }}}}"
        amount: "{{{{ row.amount | float }}}}"
"""


def user_id(index: int) -> str:
    return f"u{index:07d}"


def row_index(uid: object) -> int | None:
    """The row a user id belongs to, or None for anything the workload never produced."""
    if not isinstance(uid, str) or len(uid) < 2 or uid[0] != "u" or not uid[1:].isdigit():
        return None
    return int(uid[1:])


def row(index: int) -> dict[str, str]:
    return {
        "id": user_id(index),
        "email": f"user{index}@example.com",
        "first_name": _NAMES[index % len(_NAMES)],
        "plan": _PLANS[index % len(_PLANS)],
        "country": _COUNTRIES[index % len(_COUNTRIES)],
        "amount": f"{(index % 500) + 0.99:.2f}",
    }


def traits(record: dict[str, str]) -> dict[str, str]:
    """What the official clients send as identify traits: the flow's identify step, by hand."""
    return {name: record[name] for name in ("email", "first_name", "plan", "country")}


def properties(record: dict[str, str]) -> dict[str, object]:
    """The flow's track properties, by hand."""
    return {"plan": record["plan"], "amount": float(record["amount"])}


def write_rows(path: Path, count: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(row(i) for i in range(count))
    return path


def read_rows(path: Path, limit: int):
    """The first `limit` rows of a CSV written by write_rows, streamed."""
    with path.open(newline="", encoding="utf-8") as handle:
        for number, record in enumerate(csv.DictReader(handle)):
            if number >= limit:
                return
            yield record


def write_flow(directory: Path, data: Path) -> Path:
    path = directory / f"flow_{data.stem}.yaml"
    path.write_text(FLOW.format(data=data.name, event=EVENT), encoding="utf-8")
    return path
