"""CSV imports of people: POST /v1/imports, GET /v1/imports/{id}.

The emulator reads small files only (1 MB) and never reaches the internet: `data_file_url` may be
a `data:` URL (`data:text/csv;base64,...`) or an http(s) URL on 127.0.0.1/localhost (a local
test server). Other URLs, and event, object and relationship imports, are recorded `failed` with
the reason. A people import runs at once: the header row names the columns, the `identifier`
column (`id` or `email`) finds or creates each person, the other non-empty cells become
attributes; `data_to_process` (`all`, `only_new`, `only_existing`) is honoured. The answer's state
is then `imported` with `rows_to_import` and `rows_imported`.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from .core import APP, ApiError, Req, collect, require_object, route
from .state import State
from .store import EMAIL, ID
from .track import check_attributes, check_identifier

MAX_FILE = 1024 * 1024
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
TYPES = ("people", "event", "object", "relationship")
MODES = ("all", "only_new", "only_existing")


class ImportFailed(Exception):
    """Why an import did not run; recorded as its `error`."""


def _download(url: str) -> str:
    if url.startswith("data:"):
        meta, _, payload = url[5:].partition(",")
        raw = base64.b64decode(payload) if meta.endswith(";base64") else unquote_to_bytes(payload)
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
            raise ImportFailed("the emulator reads data: URLs and local http(s) URLs only")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                raw = answer.read(MAX_FILE + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ImportFailed(f"cannot read {url}: {exc}") from None
    if len(raw) > MAX_FILE:
        raise ImportFailed("the file is over 1 MB (the emulator imports small files)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFailed("the file is not UTF-8 text") from None


def _import_people(state: State, text: str, identifier: str, mode: str) -> tuple[int, int]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and identifier not in rows[0]:
        raise ImportFailed(f"no {identifier!r} column")
    imported = 0
    for row in rows:
        value = (row.get(identifier) or "").strip()
        if not value:
            continue
        check_identifier(value, identifier)
        attrs = {k: v for k, v in row.items() if k and k != identifier and v not in (None, "")}
        check_attributes(attrs)
        pk = state.store.find(identifier, value)
        if (mode == "only_new" and pk is not None) or (mode == "only_existing" and pk is None):
            continue
        if pk is None:
            created = state.store.identify(
                value if identifier == ID else None,
                value if identifier == EMAIL else None,
                attrs,
            )
            imported += created is not None
        else:
            state.store.set_attributes(pk, attrs)
            imported += 1
    return len(rows), imported


@route("POST", "/v1/imports", APP)
def create_import(state: State, req: Req) -> tuple[int, Any]:
    spec = require_object(require_object(req.body).get("import"), "'import'")
    for key in ("name", "data_file_url", "type"):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise ApiError(400, f"import.{key} is required", field=f"import.{key}")
    kind = spec["type"]
    if kind not in TYPES:
        raise ApiError(400, f"import.type must be one of {', '.join(TYPES)}", field="import.type")
    identifier = spec.get("identifier", ID)
    mode = spec.get("data_to_process") or spec.get("people_to_process") or "all"
    if identifier not in (ID, EMAIL) or mode not in MODES:
        raise ApiError(
            400,
            "import.identifier must be id or email, data_to_process all, only_new or only_existing",
            field="import",
        )
    now = int(state.clock.now())
    record: dict[str, Any] = {
        "created_at": now,
        "updated_at": now,
        "name": spec["name"],
        "description": str(spec.get("description") or ""),
        "type": kind,
        "identifier": identifier,
        "data_to_process": mode,
        "people_to_process": mode,
        "rows_to_import": 0,
        "rows_imported": 0,
    }
    try:
        if kind != "people":
            raise ImportFailed(f"the emulator imports people only, not {kind}")
        total, done = _import_people(state, _download(spec["data_file_url"]), identifier, mode)
        record.update(state="imported", rows_to_import=total, rows_imported=done)
    except (ImportFailed, csv.Error) as exc:
        record.update(state="failed", error=str(exc))
    except ApiError as exc:  # a row over Track's limits: the whole import fails, as a 400 would
        record.update(state="failed", error=exc.message)
    iid = state.store.db.execute(
        "INSERT INTO imports(body) VALUES(?)", (json.dumps(record),)
    ).lastrowid
    return 200, {"import": {"id": iid, **record}}


@route("GET", "/v1/imports/{import_id}", APP, mutating=False)
def get_import(state: State, req: Req) -> tuple[int, Any]:
    raw = req.params["import_id"]
    row = (
        state.store.db.execute("SELECT body FROM imports WHERE id=?", (int(raw),)).fetchone()
        if raw.isdigit()
        else None
    )
    if row is None:
        raise ApiError(404, "import not found")
    return 200, {"import": {"id": int(raw), **json.loads(row[0])}}


ROUTES = collect(globals())
