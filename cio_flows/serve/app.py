"""The webhook endpoint: POST a JSON object, the flow runs with it as its row.

Answers 2xx only after the flow's steps succeed (so the sender retries a failure), 4xx for input
that will never succeed (a bad signature, a body that is not a JSON object, a row the flow
refuses), 5xx when a step failed and a retry may work. One log line per delivery, never a
secret.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .deliveries import DeliveryRunner
from .svix import SignatureError, verify

MAX_BODY = 1024 * 1024  # a webhook body; larger is refused before it is read whole


def make_app(
    runner: DeliveryRunner, svix_key: bytes | None, log: Callable[[str], None]
) -> Starlette:
    async def delivery(request: Request) -> Response:
        body = await _read_capped(request)
        if body is None:
            log("delivery refused: 413 body over 1 MB")
            return JSONResponse({"error": "body over 1 MB"}, 413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if svix_key is not None:
            try:
                delivery_id = verify(svix_key, headers, body)
            except SignatureError as exc:
                log(f"delivery refused: {exc.status} {exc}")
                return JSONResponse({"error": str(exc)}, exc.status)
        else:
            delivery_id = headers.get("svix-id") or headers.get("webhook-id") or _digest(body)
        try:
            row = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested past the decoder's stack
            row = None
        if not isinstance(row, dict):
            log(f"delivery {delivery_id[:64]!r}: 400 the body is not a JSON object")
            return JSONResponse({"error": "the body must be a JSON object"}, 400)
        outcome = await run_in_threadpool(runner.handle, row, headers, delivery_id)
        log(outcome.line)
        return JSONResponse(outcome.body, outcome.status)

    async def health(request: Request) -> Response:
        return PlainTextResponse(f"cio-flows serve: POST a JSON body to run {runner.flow.name}\n")

    routes = [Route("/", delivery, methods=["POST"]), Route("/", health, methods=["GET"])]
    return Starlette(routes=routes)


async def _read_capped(request: Request) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _digest(body: bytes) -> str:
    """A delivery without an id header is known by its body: the same body is the same delivery."""
    return "sha256:" + hashlib.sha256(body).hexdigest()
