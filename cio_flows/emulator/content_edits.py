"""Editing a transactional message's content through the App API:
PUT /v1/transactional/{id}/content/{content_id} changes the template's `subject`, `body` (and
`from`, which the document marks read-only but the template keeps) that later sends render
(liquid_render.py). A template has one content, numbered as the template; the answer is its
contents as GET /v1/transactional/{id}/contents shows them."""

from __future__ import annotations

from typing import Any

from .content_api import transactional_contents
from .core import APP, ApiError, Req, collect, require_object, route
from .state import State

EDITABLE = {"subject": "subject", "body": "body", "from": "sender"}


@route("PUT", "/v1/transactional/{transactional_id}/content/{content_id}", APP)
def edit_content(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    tid = req.params["transactional_id"]
    found = (
        tid.isdigit()
        and state.store.db.execute("SELECT 1 FROM templates WHERE id=?", (int(tid),)).fetchone()
    )
    if not found or req.params["content_id"] != tid:
        raise ApiError(404, "transactional message or content not found")
    changes = {column: body[key] for key, column in EDITABLE.items() if key in body}
    for key, value in changes.items():
        if not isinstance(value, str):
            raise ApiError(400, f"'{key}' must be a string", field=key)
    if changes:
        sets = ", ".join(f"{column}=?" for column in changes)
        state.store.db.execute(
            f"UPDATE templates SET {sets} WHERE id=?", [*changes.values(), int(tid)]
        )
        state.refresh_templates()
    _status, contents = transactional_contents(state, req)
    return 200, {"content": contents["contents"]}


ROUTES = collect(globals())
