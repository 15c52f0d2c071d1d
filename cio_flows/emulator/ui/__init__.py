"""The emulator's web page: an inbox of every message, people, segments, campaigns and
broadcasts, and the request log, with live updates. Served on the emulator's own port beside
the API (whose paths are unchanged); nothing here is written to the request log.

  GET  /                               inbox (?channel, person, template, status, q, before)
  GET  /messages/{delivery_id}         one message: body, text, preview, trigger data, request
  GET  /messages/{delivery_id}/body    the email body alone (sandboxed, no remote loads)
  POST /messages/{delivery_id}/metrics record opened/clicked/bounced as a recipient's client
  GET  /people, /people/{id}           people (?q searches id, email, attributes); one person
  GET  /segments, /segments/{id}       segments with their counts; one segment's members
  GET  /campaigns, /campaigns/{id}, /broadcasts/{id}, /newsletters/{id}
  GET  /requests                       the request log (?family, q; keys never shown)
  GET  /live                           Server-Sent Events: `change` when the page may differ
  GET  /static/{name}                  the page's CSS and JavaScript (shipped in the package)

Templates are Jinja2 with autoescaping; the pages work without JavaScript, which only adds
live updates and a few conveniences.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ..state import State
from .live import Live
from .pages import Pages

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response("not found", 404, media_type="text/plain")
    media = STATIC_TYPES.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})


async def favicon(request: Request) -> Response:
    return FileResponse(STATIC / "icon.svg", media_type="image/svg+xml")


def routes(state: State) -> list[Route]:
    live = Live(state)
    pages = Pages(state, live.mark)
    get = ["GET", "HEAD"]
    return [
        Route("/", pages.inbox, methods=get),
        Route("/messages/{delivery_id}", pages.message, methods=get),
        Route("/messages/{delivery_id}/body", pages.message_body, methods=get),
        Route("/messages/{delivery_id}/metrics", pages.record, methods=["POST"]),
        Route("/people", pages.people, methods=get),
        Route("/people/{ref:path}", pages.person, methods=get),
        Route("/segments", pages.segments, methods=get),
        Route("/segments/{segment_id}", pages.segment, methods=get),
        Route("/campaigns", pages.programs, methods=get),
        Route("/campaigns/{program_id}", pages.program("campaign"), methods=get),
        Route("/broadcasts/{program_id}", pages.program("broadcast"), methods=get),
        Route("/newsletters/{program_id}", pages.program("newsletter"), methods=get),
        Route("/requests", pages.requests, methods=get),
        Route("/live", live.stream, methods=["GET"]),
        Route("/static/{name}", static, methods=get),
        Route("/favicon.ico", favicon, methods=get),
    ]
