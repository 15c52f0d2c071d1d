"""App API exports: start one, wait until it is done, download its file.

    POST /v1/exports/customers {"filters": FILTER}       -> {"export": {"id", "status", ...}}
    POST /v1/exports/deliveries {"newsletter_id": N, ...}
    GET  /v1/exports/{id}            until status is done (or failed)
    GET  /v1/exports/{id}/download   -> {"url": signed link, valid 15 minutes}
    GET  url                          the file, without any Authorization header

A handful of App API calls whatever the audience, where search + bulk attributes need one call
per 1,000 people plus one per 100. The file is read as CSV, gzip-compressed or not (Customer.io
does not document the format; the emulator serves gzip CSV).
"""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from ..errors import ExportError
from ..wire.kinds import Request, Response
from ..wire.types import path_id
from .progress import Progress

FIRST_POLL = 0.25  # seconds; doubled up to MAX_POLL: a real export takes seconds to minutes
MAX_POLL = 5.0
TIMEOUT = 30 * 60.0
CHUNK = 1 << 16

Send = Callable[[Request], Response]
Bar = Callable[[int | None, str, str], Progress]


def customers_request(flt: dict[str, Any], attributes: list[str] | None = None) -> Request:
    body: dict[str, Any] = {"filters": flt}
    if attributes is not None:
        body["attributes"] = attributes
    return Request("app", "POST", "/v1/exports/customers", body, repeatable=False)


def deliveries_request(body: dict[str, Any]) -> Request:
    return Request("app", "POST", "/v1/exports/deliveries", body, repeatable=False)


def run(
    send: Send,
    start: Request,
    bar: Bar,
    *,
    timeout: float = TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """Start the export, poll it (a bar while waiting), download the file (a bar in bytes);
    the file's bytes, decompressed when gzip."""
    export = (send(start).body or {}).get("export") or {}
    export_id = export.get("id")
    if export_id is None:
        raise ExportError("the export answer has no id")
    waiting = bar(None, "export", "poll")
    deadline = time.monotonic() + timeout
    delay = FIRST_POLL
    try:
        while export.get("status") != "done":
            if export.get("status") == "failed" or export.get("failed") is True:
                raise ExportError(f"export {export_id} failed")
            if time.monotonic() > deadline:
                raise ExportError(f"export {export_id} not done after {timeout:.0f} s")
            sleep(delay)
            delay = min(delay * 2, MAX_POLL)
            status = Request("app", "GET", f"/v1/exports/{path_id(export_id)}")
            export = (send(status).body or {}).get("export") or {}
            waiting.update(1)
    finally:
        waiting.close()
    link = Request("app", "GET", f"/v1/exports/{path_id(export_id)}/download")
    url = (send(link).body or {}).get("url")
    if not isinstance(url, str) or not url:
        raise ExportError(f"export {export_id}: the download answer has no url")
    return download(url, bar)


def download(url: str, bar: Bar) -> bytes:
    """GET the signed link (no credentials go with it) and return the file, gunzipped."""
    where = _without_query(url)  # the signature is a credential: never shown
    try:
        with requests.get(url, stream=True, timeout=(10, 300)) as answer:
            if answer.status_code != 200:
                raise ExportError(f"download from {where} answered {answer.status_code}")
            size = answer.headers.get("Content-Length")
            progress = bar(int(size) if size and size.isdigit() else None, "download", "B")
            buffer = io.BytesIO()
            try:
                for chunk in answer.raw.stream(CHUNK, decode_content=True):
                    buffer.write(chunk)
                    progress.update(len(chunk))
            finally:
                progress.close()
    except requests.RequestException as exc:
        raise ExportError(f"download from {where} failed: {type(exc).__name__}") from None
    data = buffer.getvalue()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
