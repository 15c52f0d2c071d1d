"""The web page's endpoints: server-rendered HTML from the templates next to this module.

Every page is scrubbed of the keys the emulator accepts before it leaves, carries a
Content-Security-Policy that allows only this origin's script and style, and is never cached.
An email body is served on its own path with a policy that forbids scripts and every remote
load, and is shown in a sandboxed iframe.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..messages import record_metric
from ..sends import CHANNELS
from ..state import State
from . import catalog, inbox, people

HERE = Path(__file__).parent
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'none'"
)
# The email body: inline styles and data: images only; no script, no remote anything.
BODY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:;"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"
)
BUTTON_METRICS = ("opened", "clicked", "bounced")


def when(ts: float | int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")


def clock(ts: float | int | None) -> str:
    """The time of day only: a lifecycle's steps are seconds apart."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(float(ts), UTC).strftime("%H:%M:%S")


def iso(ts: float | int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="seconds")


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, clock=clock, iso=iso, pretty=pretty, person_link=people.link)
    env.globals.update(channels=CHANNELS, statuses=inbox.STATUSES)
    return env


class Pages:
    def __init__(self, state: State, live_mark: Any) -> None:
        self.state = state
        self.live_mark = live_mark

    # -- rendering ---------------------------------------------------------------------------

    def render(self, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("live", self.live_mark())
        html = environment().get_template(name).render(**context)
        return Response(self.scrub(html), status, media_type="text/html", headers=_headers())

    def scrub(self, text: str) -> str:
        """No key the emulator accepts ever leaves in a page."""
        for secret in self.state.secrets:
            text = text.replace(secret, "[REDACTED]")
        return text

    def missing(self, what: str) -> Response:
        return self.render("missing.html", 404, what=what, section="")

    # -- pages -------------------------------------------------------------------------------

    async def inbox(self, request: Request) -> Response:
        f = inbox.InboxFilter.from_query(request.query_params)
        rows, more = inbox.messages(self.state, f)
        return self.render(
            "inbox.html",
            section="inbox",
            f=f,
            rows=rows,
            more=more,
            templates=inbox.templates(self.state),
            query=_query_without(request, "before"),
        )

    async def message(self, request: Request) -> Response:
        found = inbox.message(self.state, request.path_params["delivery_id"])
        if found is None:
            return self.missing("message")
        return self.render("message.html", section="inbox", m=found, buttons=BUTTON_METRICS)

    async def message_body(self, request: Request) -> Response:
        found = inbox.message(self.state, request.path_params["delivery_id"])
        if found is None or not found["html"]:
            return Response("no email body", 404, media_type="text/plain")
        headers = {**_headers(), "Content-Security-Policy": BODY_POLICY}
        return Response(self.scrub(found["html"]), 200, media_type="text/html", headers=headers)

    async def record(self, request: Request) -> Response:
        """A recipient's client reporting a metric (the message page's buttons)."""
        if not _same_origin(request):
            return Response("cross-origin request refused", 403, media_type="text/plain")
        # A plain urlencoded form: parsed here (starlette's form parser needs another package).
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        metric = (form.get("metric") or [""])[0]
        delivery_id = request.path_params["delivery_id"]
        if metric not in BUTTON_METRICS:
            return Response(f"metric must be one of {BUTTON_METRICS}", 400)
        if not record_metric(self.state, delivery_id, metric):
            return self.missing("message")
        return RedirectResponse(f"/messages/{delivery_id}", 303)

    async def people(self, request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        before = request.query_params.get("before", "")
        found, more = people.search(self.state, q, int(before) if before.isdigit() else None)
        return self.render("people.html", section="people", q=q, people=found, more=more)

    async def person(self, request: Request) -> Response:
        # An encoded slash in an id reaches the router as U+FFFE (app.py keeps it one segment).
        ref = request.path_params["ref"].replace("\ufffe", "/")
        pk = people.find(self.state, ref)
        if pk is None:
            return self.missing("person")
        return self.render("person.html", section="people", p=people.person(self.state, pk))

    async def segments(self, request: Request) -> Response:
        return self.render(
            "segments.html", section="segments", segments=catalog.segments(self.state)
        )

    async def segment(self, request: Request) -> Response:
        raw = request.path_params["segment_id"]
        found = catalog.segment(self.state, int(raw)) if raw.isdigit() else None
        if found is None:
            return self.missing("segment")
        return self.render("segment.html", section="segments", s=found)

    async def programs(self, request: Request) -> Response:
        return self.render(
            "programs.html", section="campaigns", programs=catalog.programs(self.state)
        )

    def program(self, kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def page(request: Request) -> Response:
            raw = request.path_params["program_id"]
            found = catalog.program(self.state, kind, int(raw)) if raw.isdigit() else None
            if found is None:
                return self.missing(kind)
            return self.render("program.html", section="campaigns", p=found)

        return page

    async def requests(self, request: Request) -> Response:
        family = request.query_params.get("family", "")
        family = family if family in catalog.FAMILIES else ""
        q = request.query_params.get("q", "").strip()
        before = request.query_params.get("before", "")
        entries, more = catalog.requests(
            self.state, family, q, int(before) if before.isdigit() else None
        )
        return self.render(
            "requests.html",
            section="requests",
            entries=entries,
            more=more,
            family=family,
            q=q,
            families=catalog.FAMILIES,
            query=_query_without(request, "before"),
        )


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": PAGE_POLICY,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _query_without(request: Request, name: str) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != name and v]
    return urlencode(kept)


def _same_origin(request: Request) -> bool:
    """A form posted by this page, not by another site. Browsers say so in Sec-Fetch-Site
    (their Origin is "null" under the page's no-referrer policy); other clients may send an
    Origin, which must be this host."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or origin.split("://", 1)[-1] == request.headers.get("host", "")
