"""A Customer.io stand-in that counts every event it accepts, exactly, for the sync benchmark.

    .venv/bin/python benchmarks/counting_server.py --port 8711

It answers the identify/track paths of Pipelines (/v1/identify, /v1/track, /v1/batch) and Track
(PUT /api/v1/customers/{id}, POST /api/v1/customers/{id}/events, /api/v2/entity, /api/v2/batch).
Rate limits and 5xx faults reuse the emulator's own TokenBucket and FaultInjector, so they behave
as the emulator's do. It differs from the emulator in two ways, on purpose:
- events are counted per (kind, row) in a bytearray, whatever messageId a client sends, so a
  resend with a fresh id still shows up as a duplicate and a million rows cost 2 MB;
- latency is added to every answer, 429s included, as a server that far away would.

Control (no auth, loopback only):
  POST /_bench/reset  {"rows", "latency", "rate", "error_rate", "seed"}: fresh counts and settings
  GET  /_bench/stats  what was received since the last reset
  GET  /_bench/health
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from workload import EVENT, KINDS, row_index

from cio_flows.emulator.config import Faults, RateLimit
from cio_flows.emulator.faults import FaultInjector, TokenBucket, retry_after
from cio_flows.emulator.server import listening_socket

JSON = "application/json"
OK_BODY = b"{}"


def _errors(message: str) -> bytes:
    return json.dumps({"meta": {"errors": [message]}}).encode()


RATE_LIMITED = _errors("rate limit exceeded")
UNAVAILABLE = _errors("service unavailable")


_KIND_POSITION = {kind: position for position, kind in enumerate(KINDS)}


class Invalid(ValueError):
    """A request the workload would never produce: a harness bug, never counted."""


class Counts:
    """Everything received since the last reset."""

    def __init__(self, rows: int = 0) -> None:
        self.rows = rows
        self.seen = bytearray(rows * len(KINDS))  # receipts per event, saturating at 255
        self.receipts = 0  # events accepted, repeats included
        self.requests = 0
        self.statuses: dict[int, int] = {}
        self.first_ok = self.last_ok = None
        self.ok_requests = 0
        self.cpu = time.process_time()  # to show the server was never the bottleneck

    def answer(self, status: int) -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status < 300:
            now = time.monotonic()
            self.first_ok = self.first_ok or now
            self.last_ok = now
            self.ok_requests += 1

    def accept(self, keys: list[int]) -> None:
        for key in keys:
            if self.seen[key] < 255:
                self.seen[key] += 1
        self.receipts += len(keys)

    def key(self, uid: Any, kind: str) -> int:
        index = row_index(uid)
        if index is None or index >= self.rows:
            raise Invalid(f"unknown user id {uid!r}")
        position = _KIND_POSITION.get(kind)
        if position is None:
            raise Invalid(f"unknown kind {kind!r}")
        return index * len(KINDS) + position

    def report(self) -> dict[str, Any]:
        expected = len(self.seen)
        delivered = expected - self.seen.count(0)
        window = (self.last_ok - self.first_ok) if self.first_ok else 0.0
        return {
            "rows": self.rows,
            "expected": expected,
            "delivered": delivered,
            "losses": expected - delivered,
            "duplicates": self.receipts - delivered,
            "requests": self.requests,
            "ok_requests": self.ok_requests,
            "ok_window": window,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_cpu": time.process_time() - self.cpu,
        }


class Settings:
    def __init__(
        self, latency: float = 0.0, rate: float = 0.0, error_rate: float = 0.0, seed: int = 0
    ):
        self.latency = latency
        self.buckets = {f: TokenBucket(RateLimit(rate)) for f in ("track", "pipelines") if rate}
        faults = Faults(error_rate=error_rate, error_statuses=(503,), seed=seed)
        self.injectors = {f: FaultInjector(faults) for f in ("track", "pipelines") if error_rate}


# --- what each path carries: a list of (user id, kind), after checking it looks right --------


def _pipelines_item(item: Any, kind: str | None = None) -> tuple[Any, str]:
    if not isinstance(item, dict):
        raise Invalid("item is not an object")
    kind = kind or item.get("type")
    if kind == "identify" and isinstance(item.get("traits"), dict) and item["traits"].get("email"):
        return item.get("userId"), kind
    if kind == "track" and item.get("event") == EVENT:
        return item.get("userId"), kind
    raise Invalid(f"unexpected {kind} item")


def _track_v2_item(item: Any) -> tuple[Any, str]:
    if not isinstance(item, dict) or item.get("type") != "person":
        raise Invalid("v2 item is not a person operation")
    uid = (item.get("identifiers") or {}).get("id")
    action = item.get("action")
    if action == "identify" and (item.get("attributes") or {}).get("email"):
        return uid, "identify"
    if action == "event" and item.get("name") == EVENT:
        return uid, "track"
    raise Invalid(f"unexpected v2 action {action!r}")


def _batch_items(body: Any) -> list:
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise Invalid("batch body without a batch list")
    return body["batch"]


def events_in(path: str, method: str, path_id: str | None, body: Any) -> list[tuple[Any, str]]:
    if path == "/v1/identify":
        return [_pipelines_item(body, "identify")]
    if path == "/v1/track":
        return [_pipelines_item(body, "track")]
    if path == "/v1/batch":
        return [_pipelines_item(item) for item in _batch_items(body)]
    if path == "/api/v2/entity":
        return [_track_v2_item(body)]
    if path == "/api/v2/batch":
        return [_track_v2_item(item) for item in _batch_items(body)]
    if path.endswith("/events") and isinstance(body, dict) and body.get("name") == EVENT:
        return [(path_id, "track")]
    if method == "PUT" and isinstance(body, dict) and body.get("email"):
        return [(path_id, "identify")]
    raise Invalid(f"unexpected {method} {path}")


# --- the app ---------------------------------------------------------------------------------


def build_app() -> Starlette:
    state = {"counts": Counts(), "settings": Settings()}

    async def handle(request: Request) -> Response:
        family = "track" if request.url.path.startswith("/api/") else "pipelines"
        settings: Settings = state["settings"]
        counts: Counts = state["counts"]
        body = await request.body()
        # Decide at arrival, as the emulator does; answer after the latency either way.
        bucket = settings.buckets.get(family)
        wait = bucket.take() if bucket else 0.0
        injector = settings.injectors.get(family)
        fault = injector.decide().status if injector and not wait else None
        if settings.latency:
            await asyncio.sleep(settings.latency)
        if counts is not state["counts"]:  # a reset happened meanwhile: a stale straggler
            return Response(b"", 503)
        if wait:
            return _answer(counts, 429, RATE_LIMITED, {"Retry-After": retry_after(wait)})
        if fault:
            return _answer(counts, fault, UNAVAILABLE)
        try:
            # orjson: the harness's parsing is CPU the measured client, on the same cores,
            # does not get (json.loads took 0.9 ms a batch of 1,000 events, orjson 0.5)
            parsed = orjson.loads(body) if body else None
            pairs = events_in(
                request.url.path, request.method, request.path_params.get("id"), parsed
            )
            keys = [counts.key(uid, kind) for uid, kind in pairs]
        except (Invalid, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            return _answer(counts, 400, _errors(str(exc)))
        counts.accept(keys)
        return _answer(counts, 200, OK_BODY)

    async def reset(request: Request) -> Response:
        spec = await request.json()
        state["counts"] = Counts(int(spec.get("rows", 0)))
        state["settings"] = Settings(
            float(spec.get("latency", 0)),
            float(spec.get("rate", 0)),
            float(spec.get("error_rate", 0)),
            int(spec.get("seed", 0)),
        )
        return Response(OK_BODY, media_type=JSON)

    async def stats(request: Request) -> Response:
        return Response(json.dumps(state["counts"].report()), media_type=JSON)

    async def health(request: Request) -> Response:
        return Response(OK_BODY, media_type=JSON)

    routes = [
        Route("/_bench/reset", reset, methods=["POST"]),
        Route("/_bench/stats", stats, methods=["GET"]),
        Route("/_bench/health", health, methods=["GET"]),
        Route("/v1/{kind:str}", handle, methods=["POST"]),
        Route("/api/v1/customers/{id:str}", handle, methods=["PUT"]),
        Route("/api/v1/customers/{id:str}/events", handle, methods=["POST"]),
        Route("/api/v2/{kind:str}", handle, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _answer(counts: Counts, status: int, body: bytes, headers=None) -> Response:
    counts.answer(status)
    return Response(body, status, headers=headers, media_type=JSON)


def serve(port: int, host: str = "127.0.0.1") -> None:
    sock = listening_socket(host, port)  # sets up TCP_NODELAY like the emulator
    config = uvicorn.Config(
        build_app(),
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=2048,
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8711)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
