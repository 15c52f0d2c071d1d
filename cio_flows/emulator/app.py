"""The Starlette app: routing, auth per family, limits and faults, body parsing, error shapes.

Pipelines and App share `/v1`: the path decides the family (App owns /v1/customers, /v1/segments,
/v1/send/..., /v1/messages, /v1/activities, /v1/exports, /v1/campaigns, /v1/broadcasts and
/v1/newsletters; Pipelines owns /v1/identify, /track, /page, /screen, /group, /alias, /batch),
then the Authorization header must match that family's scheme and key.

Every mutating request runs in one SQLite transaction on the event-loop thread. Handlers never
await inside it, so requests cannot interleave and an exception leaves nothing half-written.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import io
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from . import (
    activities,
    app_api,
    broadcasts,
    content_api,
    content_edits,
    documented,
    esp,
    exports,
    imports,
    inspection,
    journeys,
    library,
    messages,
    objects_api,
    pipelines,
    program_reads,
    programs,
    sends,
    track,
    track_reports,
    track_v2,
    ui,
    webhooks,
)
from .config import INSTEAD_OF_FAMILY
from .core import (
    APP,
    ERRORS_DETAIL,
    ERRORS_FIELD,
    MAX_JSON_DEPTH,
    META_ERROR,
    META_ERRORS,
    PIPELINES,
    TRACK,
    ApiError,
    JsonTooDeep,
    Req,
    RouteSpec,
    load_json,
)
from .faults import retry_after
from .state import State

log = logging.getLogger("cio_flows.emulator")

JSON = "application/json; charset=utf-8"
MAX_BODY = 4 * 1024 * 1024  # beyond any Customer.io limit: refused before reading (413)
EMPTY = b"{}"
SLASH = "\ufffe"  # stands in for an encoded slash inside one path segment while routing


def error_body(
    style: str, status: int, message: str, field: str | None = None, reason: str = "invalid"
) -> bytes:
    if style == ERRORS_DETAIL:
        payload: Any = {"errors": [{"detail": message, "status": str(status)}]}
    elif style == META_ERROR:
        payload = {"meta": {"error": message}}
    elif style == ERRORS_FIELD:
        payload = {"errors": [{"reason": reason, "field": field or "", "message": message}]}
    else:
        payload = {"meta": {"errors": [message]}}
    return json.dumps(payload, separators=(",", ":")).encode()


def _json(payload: Any) -> bytes:
    if payload is None or payload == {}:
        return EMPTY
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class Auth:
    """Pre-decoded expectations, so checking a header is a couple of string compares."""

    def __init__(self, state: State) -> None:
        c = state.credentials
        self.track = (c.site_id, c.track_key)
        self.pipelines = c.pipelines_key
        self.app = c.app_key

    def ok(self, family: str, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if family == APP:
            return scheme == "bearer" and value == self.app
        if family == PIPELINES and scheme == "bearer":  # the official client, for pk_/sk_ keys
            return value == self.pipelines
        if scheme != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if family == TRACK:
            return (user, password) == self.track
        return user == self.pipelines and password == ""


class Dispatcher:
    def __init__(self, state: State) -> None:
        self.state = state
        self.auth = Auth(state)

    def endpoint(self, spec: RouteSpec):
        async def run(request: Request) -> Response:
            return await self.dispatch(request, spec)

        return run

    async def dispatch(self, request: Request, spec: RouteSpec) -> Response:
        state = self.state
        started = time.perf_counter()
        family, style = spec.family, spec.style
        scope = request.scope
        entry = {
            "time": time.time(),
            "method": scope["method"],
            "path": scope["path"].replace(SLASH, "/"),
            "query": scope["query_string"].decode("latin-1"),
            "family": family,
        }
        raw: bytes | None = None
        parsed: Any = None
        headers: dict[str, str] = {}

        def finish(status: int, body: bytes, note: str | None = None) -> Response:
            entry["status"] = status
            entry["ms"] = round((time.perf_counter() - started) * 1000, 3)
            if note:
                entry["note"] = note
            state.record(entry, raw, parsed)
            if (family == TRACK and status == 401) or status == 204:
                return Response(b"", status, headers=headers)
            return Response(body, status, headers=headers, media_type=JSON)

        own = state.buckets.get(spec.bucket) if spec.bucket else None
        names = (
            (spec.bucket,) if own and spec.bucket in INSTEAD_OF_FAMILY else (family, spec.bucket)
        )
        for name in names:
            bucket = state.buckets.get(name) if name else None
            wait = bucket.take() if bucket is not None else 0.0
            if wait:
                headers["Retry-After"] = retry_after(wait)
                return finish(429, error_body(style, 429, "rate limit exceeded"), "rate limited")
        injector = state.injectors.get(family)
        if injector is not None:
            decision = injector.decide()
            if decision.latency:
                await asyncio.sleep(decision.latency)
            if decision.drop:
                await _drop(request)
                entry.update(status=0, note="fault: connection dropped")
                state.record(entry, None)
                return Response(b"", 500)  # never written: the connection is gone
            if decision.status:
                msg = "internal server error" if decision.status == 500 else "service unavailable"
                return finish(decision.status, error_body(style, decision.status, msg), "fault")

        req_headers = request.headers
        strict = family == PIPELINES and req_headers.get("x-strict-mode") == "1"
        permissive = family == PIPELINES and not strict
        try:
            # Auth first: a caller without credentials gets nothing read (issue 18, item 14).
            if spec.auth and not self.auth.ok(family, req_headers.get("authorization")):
                if permissive:  # Pipelines answers 200 and quietly drops the data
                    return finish(200, EMPTY, "ignored: bad or missing credentials")
                return finish(401, error_body(style, 401, "unauthorized"), "unauthorized")
            if spec.method != "GET":
                raw = await _read_body(request)
            body = None
            if raw is not None:
                if raw and req_headers.get("content-encoding", "").lower() == "gzip":
                    raw = _gunzip(raw)  # the official Pipelines client can gzip its batches
                body = parsed = _parse(raw, req_headers.get("content-type"), family)
            params = request.path_params
            if SLASH in scope["path"]:
                params = {k: v.replace(SLASH, "/") for k, v in params.items()}
            req = Req(
                spec.method,
                scope["path"].replace(SLASH, "/"),
                params,
                request.query_params,
                body,
                len(raw or b""),
                strict,
                _root(request),
            )
            if spec.mutating:
                with state.store.tx():
                    status, payload = spec.handler(state, req)
            else:
                status, payload = spec.handler(state, req)
        except ApiError as exc:
            if permissive:
                return finish(200, EMPTY, f"ignored: {exc.message}")
            body = error_body(style, exc.status, exc.message, exc.field, exc.reason)
            return finish(exc.status, body, exc.message)
        except OverflowError:  # a number past SQLite's 64 bits (an id, a timestamp), or inf
            message = "a number in the request is out of range"
            return finish(400, error_body(style, 400, message), message)
        except Exception:  # never crash the server; the transaction was rolled back
            log.exception("emulator handler failed for %s %s", scope["method"], scope["path"])
            return finish(500, error_body(style, 500, "internal server error"), "exception")
        return finish(status, _json(payload))


async def _read_body(request: Request) -> bytes:
    """The body, refused (413) past MAX_BODY whether it says its length or comes chunked."""
    declared = request.headers.get("content-length") or "0"
    if not declared.isdigit() or int(declared) > MAX_BODY:
        raise ApiError(413, "request body too large")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "request body too large")
        parts.append(chunk)
    return b"".join(parts)


def _gunzip(raw: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            out = f.read(MAX_BODY + 1)
    except (OSError, EOFError):
        raise ApiError(400, "body is not valid gzip") from None
    if len(out) > MAX_BODY:
        raise ApiError(413, "request body too large")
    return out


def _parse(raw: bytes, content_type: str | None, family: str) -> Any:
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded" and family == TRACK:
        # Track v1 still takes the form posts its old docs used (curl -d email=...).
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(415, f"unsupported content type {ctype!r}: send application/json")
    if not raw.strip():
        return {}
    try:
        return load_json(raw)
    except JsonTooDeep:
        message = f"JSON in request body is nested deeper than {MAX_JSON_DEPTH} levels"
        raise ApiError(400, message) from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "malformed JSON in request body") from None


def _root(request: Request) -> str:
    host = request.headers.get("host") or "127.0.0.1"
    return f"{request.scope.get('scheme', 'http')}://{host}"


async def _drop(request: Request) -> None:
    """Close the socket without answering, as a dead proxy would."""
    transport = request.scope.get("cio.transport")
    if transport is not None:
        transport.close()
    # Let uvicorn see the disconnect so it does not try to answer.
    for _ in range(2):
        await asyncio.sleep(0)


def build_app(state: State) -> Starlette:
    dispatcher = Dispatcher(state)
    specs = [
        *pipelines.ROUTES,
        *track.ROUTES,
        *track_v2.ROUTES,
        *app_api.ROUTES,
        *messages.ROUTES,
        *broadcasts.ROUTES,
        *activities.ROUTES,
        *exports.ROUTES,
        *programs.ROUTES,
        *sends.ROUTES,
        *content_api.ROUTES,
        *esp.ROUTES,
        *webhooks.ROUTES,
        *track_reports.ROUTES,
        *objects_api.ROUTES,
        *library.ROUTES,
        *imports.ROUTES,
        *content_edits.ROUTES,
        *program_reads.ROUTES,
    ]
    specs += documented.routes(specs)
    routes: list[Route] = [Route(s.path, dispatcher.endpoint(s), methods=[s.method]) for s in specs]
    routes.extend(inspection.routes(state))
    routes.extend(webhooks.routes(state))  # /_emulator/webhooks
    routes.extend(journeys.routes(state))  # /_emulator/clock
    routes.extend(exports.download_routes(state))
    routes.extend(ui.routes(state))  # the web page: /, /messages/..., /people, ...
    known = list(routes)

    async def unknown(request: Request) -> Response:
        path = request.url.path
        style = META_ERRORS if path.startswith("/api/") else ERRORS_DETAIL
        allowed = any(r.matches(request.scope)[0] == Match.PARTIAL for r in known)
        status = 405 if allowed else 404
        message = "method not allowed" if allowed else "not found"
        entry = {
            "time": time.time(),
            "method": request.method,
            "path": path,
            "query": request.scope["query_string"].decode("latin-1"),
            "family": "unknown",
            "status": status,
            "ms": 0.0,
        }
        state.record(entry, None)
        return Response(error_body(style, status, message), status, media_type=JSON)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    routes.append(Route("/{rest:path}", unknown, methods=methods))
    return _keep_encoded_slashes(Starlette(routes=routes))


def _keep_encoded_slashes(app: Starlette):
    """An identifier may hold an encoded slash (`a%2Fb`): route on the raw segments so it stays
    one path parameter (uvicorn has already decoded it into a real `/`)."""

    async def wrapper(scope, receive, send) -> None:
        raw = scope.get("raw_path")
        if scope["type"] == "http" and raw and b"%2f" in raw.lower():
            segments = raw.decode("latin-1").split("/")
            scope["path"] = "/".join(unquote(seg).replace("/", SLASH) for seg in segments)
        await app(scope, receive, send)

    wrapper.app = app  # type: ignore[attr-defined]
    return wrapper
