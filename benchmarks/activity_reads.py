"""The emulator's workspace reads at scale: GET /v1/activities and /v1/messages pages at N
generated people, against the old activities path (every activity built, sorted and sliced)
measured in the same run.

    .venv/bin/python benchmarks/activity_reads.py                  # 20,000 people
    .venv/bin/python benchmarks/activity_reads.py --people 2000    # quicker

Pages are read over HTTP as a client sees them (seconds a page, best of --repeat); the old path
runs in the emulator's process on the same state, without HTTP, so the ratio flatters it. Every
page of the first --check pages of each read is compared with the old path's: same activities,
same order. Target (issue 25): at most 0.3 s a page at 20,000 people.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from functools import partial
from typing import Any

from cio_flows.emulator import DEMO_CREDENTIALS, Emulator
from cio_flows.emulator.activities import (
    DELIVERY_TYPE,
    METRIC_LAG,
    WORKSPACE_DAYS,
    documented_types,
)
from cio_flows.emulator.messages import MESSAGE_TYPE, lifecycle
from cio_flows.emulator.state import State

TARGET = 0.3


def old_activity_rows(state: State, pk: int | None, since: float = 0) -> list[dict[str, Any]]:
    """The path before issue 25: every activity built and sorted (kept to compare with)."""
    db = state.store.db
    where, args = ("pk=?", [pk]) if pk is not None else ("pk IS NOT NULL", [])
    people: dict[int, dict[str, Any]] = {}

    def who(owner: int) -> dict[str, Any]:
        if owner not in people:
            person = state.store.person(owner) or {"id": None, "email": None, "cio_id": None}
            people[owner] = {
                "customer_id": person["id"],
                "customer_identifiers": {k: person[k] for k in ("id", "email", "cio_id")},
            }
        return people[owner]

    keyed: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    for eid, owner, name, kind, data, ts in db.execute(
        f"SELECT eid, pk, name, type, data, timestamp FROM events WHERE {where} AND timestamp>=?",
        [*args, since],
    ):
        row = {"id": f"ev{eid}", **who(owner), "type": kind, "name": name, "timestamp": ts}
        row["data"] = json.loads(data)
        if kind == "page":
            row["url"] = name
        keyed.append(((ts, 0, eid), row))
    for cid, owner, name, old, new, ts in db.execute(
        f"SELECT cid, pk, name, old, new, ts FROM changes WHERE {where} AND ts>=?",
        [*args, since],
    ):
        row = {"id": f"ac{cid}", **who(owner), "type": "attribute_change", "name": name}
        row.update(timestamp=ts, data={name: {"from": old or "", "to": new or ""}})
        keyed.append(((ts, 1, cid), row))
    at = state.clock.now()
    seqs = [
        seq
        for (seq,) in db.execute(
            f"SELECT seq FROM deliveries WHERE {where} AND COALESCE(created_f, queued_at)>=?",
            [*args, since - METRIC_LAG if since else 0],
        )
    ]
    platforms: dict[str, str] = {}
    for d in state.store.deliveries(seqs=seqs) if seqs else ():
        if d["created_f"] > at:
            continue
        metrics, _ = lifecycle(state, d, at)
        mtype = MESSAGE_TYPE.get(d["channel"], d["channel"])
        delivery_type = DELIVERY_TYPE.get(d["channel"])
        if d["channel"] == "push":
            if d["pk"] not in platforms:
                platforms.update({x["id"]: x["platform"] for x in state.store.devices(d["pk"])})
            delivery_type = platforms.get(d["recipient"])
        for step, (metric, ts) in enumerate(metrics.items()):
            kind = f"{metric}_{mtype}"
            if metric == "created" or ts < since or kind not in documented_types():
                continue
            row = {"id": f"dl{d['seq']}:{metric}", **who(d["pk"]), "type": kind}
            row.update(name=d["template"], timestamp=ts)
            if delivery_type is not None:
                row["delivery_type"] = delivery_type
            row["data"] = {
                "delivery_id": d["id"],
                "delivered": metrics.get("delivered"),
                "opened": "opened" in metrics,
            }
            row["delivery_id"] = d["id"]
            keyed.append(((ts, 2, d["seq"] * 100 + step), row))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [row for _, row in keyed]


def old_page(state: State, params: dict[str, Any], page: int) -> list[dict[str, Any]]:
    """Page `page` (0-based) of the old workspace read: all rows built, filtered, sliced."""
    rows = old_activity_rows(state, None, state.clock.now() - WORKSPACE_DAYS * 86400)
    for field in ("type", "name"):
        if params.get(field):
            rows = [r for r in rows if r[field] == params[field]]
    limit = params["limit"]
    return rows[page * limit : (page + 1) * limit]


def reader(url: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    def get(path: str, params: dict[str, Any]) -> dict[str, Any]:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS.app_key}"}
        request = urllib.request.Request(f"{url}{path}?{query}", headers=headers)
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.load(answer)

    return get


def timed(action: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return result, best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--pages", type=int, default=5, help="pages timed in each read")
    parser.add_argument("--check", type=int, default=3, help="pages compared with the old path")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    emulator = Emulator(workspace={"demo": {"people": args.people}})
    emulator.start()
    print(f"emulator with {args.people:,} generated people: {time.perf_counter() - started:.1f} s")
    get = reader(emulator.url)
    state = emulator._state
    worst = 0.0
    mismatches = 0
    try:
        reads: list[tuple[str, dict[str, Any]]] = [
            ("/v1/activities", {"limit": 100}),
            ("/v1/activities", {"limit": 10}),
            ("/v1/activities", {"limit": 100, "type": "opened_email"}),
            ("/v1/activities", {"limit": 100, "name": "Welcome aboard"}),
        ]
        for path, params in reads:
            cursor, times, shown = None, [], []
            for page in range(args.pages):
                body, seconds = timed(partial(get, path, {**params, "start": cursor}), 1)
                times.append(seconds)
                if page < args.check:
                    old, old_seconds = timed(
                        partial(emulator.call, partial(old_page, state, params, page)),
                        args.repeat if page == 0 else 1,
                    )
                    if body["activities"] != old:
                        mismatches += 1
                    if page == 0:
                        old_first = old_seconds
                shown.append(len(body["activities"]))
                cursor = body["next"]
                if not cursor:
                    break
            worst = max(worst, max(times))
            label = f"{path}?{urllib.parse.urlencode(params)}"
            print(
                f"  {label:52} {sum(times) / len(times):6.3f} s a page (worst {max(times):.3f},"
                f" {len(times)} pages); old path {old_first:6.2f} s a page:"
                f" {old_first / (sum(times) / len(times)):5.0f}x"
            )
        for params in ({"limit": 1000}, {"limit": 100, "metric": "opened"}):
            cursor, times = None, []
            for _ in range(args.pages):
                body, seconds = timed(partial(get, "/v1/messages", {**params, "start": cursor}), 1)
                times.append(seconds)
                cursor = body["next"]
                if not cursor:
                    break
            label = f"/v1/messages?{urllib.parse.urlencode(params)}"
            print(f"  {label:52} {sum(times) / len(times):6.3f} s a page (worst {max(times):.3f})")
    finally:
        emulator.close()
    print(
        f"pages identical to the old path's: {'yes' if mismatches == 0 else f'NO ({mismatches})'}"
    )
    print(
        f"target: /v1/activities at most {TARGET} s a page: {'met' if worst <= TARGET else 'NOT met'}"
    )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
