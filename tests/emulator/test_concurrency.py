"""Many threads writing at once: every write lands exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from .conftest import PIPELINES_AUTH, TRACK_AUTH

THREADS, PER_THREAD = 8, 40


def test_concurrent_writes_are_all_counted(client, emu):
    url = client.url

    def work(t: int) -> list[int]:
        codes = []
        with requests.Session() as s:
            for i in range(PER_THREAD):
                pid = f"c{t}_{i}"
                codes.append(
                    s.put(
                        f"{url}/api/v1/customers/{pid}",
                        json={"n": i, "grp": "conc"},
                        headers=TRACK_AUTH,
                    ).status_code
                )
                # Every thread also writes events onto one shared person.
                codes.append(
                    s.post(
                        f"{url}/v1/track",
                        json={"userId": "shared", "event": f"e{t}_{i}"},
                        headers=PIPELINES_AUTH,
                    ).status_code
                )
        return codes

    with ThreadPoolExecutor(THREADS) as pool:
        codes = [c for result in pool.map(work, range(THREADS)) for c in result]
    assert set(codes) == {200}
    found = client.search(
        {"attribute": {"field": "grp", "operator": "eq", "value": "conc"}}, limit=1000
    ).json()["ids"]
    assert len(found) == THREADS * PER_THREAD == len(set(found))
    shared = [e for e in emu.inspect.events() if e["person"] and e["person"]["id"] == "shared"]
    assert len(shared) == THREADS * PER_THREAD
    assert len([p for p in emu.inspect.people() if p["id"] == "shared"]) == 1


def test_concurrent_batches_with_duplicate_message_ids(client, emu):
    batch = {
        "batch": [
            {"type": "track", "userId": "dup", "event": "e", "messageId": f"m{i}"}
            for i in range(50)
        ]
    }

    def post(_: int) -> int:
        return requests.post(
            f"{client.url}/v1/batch", json=batch, headers=PIPELINES_AUTH
        ).status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(post, range(12))) == {200}
    assert (
        len([e for e in emu.inspect.events() if e["person"] and e["person"]["id"] == "dup"]) == 50
    )
