"""Workspace files: the templates, segments, people and behaviour an emulator starts with.

```yaml
templates:   # transactional messages; sends must name one of these (by id or trigger) when any exist
  - {id: 1, trigger: welcome, name: Welcome, channel: email,      # subject, body, from: Liquid
     subject: "Welcome, {{ customer.first_name }}!", body: "<p>Hi {{ customer.first_name }}</p>"}
segments:    # ids are what the App API shows; dynamic ones use the App API filter grammar
  - {id: 1, name: Pro plan, type: dynamic, filter: {attribute: {field: plan, operator: eq, value: pro}}}
  - {id: 7, name: Beta testers, type: manual, members: [user_0003, ann@example.com]}
people:
  - {id: user_0001, email: a@example.com, created_at: 1700000000, attributes: {plan: pro},
     events: [{name: signed_up, timestamp: 1700000000, data: {}}]}
broadcasts:  # API-triggered broadcasts (POST /v1/campaigns/{id}/triggers)
  - {id: 1, name: Product update, channel: email, segment: 7, subject: What's new}
campaigns:   # run by the emulator on its clock (campaigns.py, journeys.py)
  - {id: 10, name: Welcome series, trigger: {event: signed_up},   # or {segment: 1}
     filter: {attribute: {field: country, operator: eq, value: DE}},   # optional audience
     actions: [{wait: 2}, {send: welcome}, {wait: 1d},
               {send: win_back, when: {attribute: {field: plan, operator: eq, value: free}}}]}
clock: {start: "2025-01-01T09:00:00Z"}   # where the emulator's clock starts (default: now)
delivery: {sent: 0.5, delivered: 1.5, trigger: 0.5, export: 1.0}   # lifecycle timing, seconds
demo: {people: 50000, seed: 1}   # generated people, segments, templates and message history
limits: customerio            # or {track: 100, app: {rate: 10, burst: 10}, triggers: 0.1}
faults: {app: {latency: 0.05, error_rate: 0.1, seed: 7}}
```
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ..yaml_limits import DATA, YamlLimitError, safe_load
from . import campaigns, demo_people
from .clock import ClockError, parse_clock
from .config import parse_delivery, parse_faults, parse_limits
from .filters import FilterError, SegmentResolver
from .store import Store, dumps

DEMO_PATH = Path(__file__).with_name("demo_workspace.yaml")
CHANNELS = ("email", "push", "sms", "whatsapp", "in_app", "inbox_message")
_KEYS = {
    "version",
    "name",
    "description",
    "templates",
    "segments",
    "people",
    "broadcasts",
    "limits",
    "faults",
    "delivery",
    "demo",
    "campaigns",
    "clock",
}
_cache: dict[tuple[str, float], dict[str, Any]] = {}
workspace_limits = replace(DATA, what="the workspace file")


class WorkspaceError(ValueError):
    """A workspace file the emulator cannot load; the message names the entry."""


def load(source: str | Path | dict | None) -> dict[str, Any]:
    """None means the demo workspace; a path or YAML text is parsed; a dict is used as is."""
    if source is None:
        source = DEMO_PATH
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        try:
            key = (str(path.resolve()), path.stat().st_mtime)
        except OSError as exc:
            raise WorkspaceError(f"cannot read workspace file {path}: {exc.strerror}") from None
        if key not in _cache:
            text = path.read_text(encoding="utf-8")
            try:  # within the flow loader's limits: an alias bomb is refused, not expanded
                _cache[key] = safe_load(text, workspace_limits) or {}
            except (yaml.YAMLError, YamlLimitError) as exc:
                raise WorkspaceError(f"{path}: invalid YAML: {exc}") from None
        data = _cache[key]
    if not isinstance(data, dict):
        raise WorkspaceError("a workspace must be a mapping")
    unknown = set(data) - _KEYS
    if unknown:
        raise WorkspaceError(f"unknown workspace keys: {', '.join(sorted(unknown))}")
    for section in ("templates", "segments", "people", "broadcasts"):
        entries = data.get(section)
        if entries is not None and not isinstance(entries, list):
            found = type(entries).__name__
            raise WorkspaceError(
                f"{section}: expected a list of entries, found {found} {entries!r}"
            )
    demo = data.get("demo")
    if demo is not None and (
        not isinstance(demo, dict)
        or set(demo) - {"people", "seed"}
        or not isinstance(demo.get("people"), int)
        or demo["people"] < 1
    ):
        raise WorkspaceError("demo: expected {people: N (a positive integer), seed: S}")
    try:
        parse_clock(data.get("clock"))
    except ClockError as exc:
        raise WorkspaceError(str(exc)) from None
    parse_limits(data.get("limits"))
    parse_faults(data.get("faults"))
    try:
        parse_delivery(data.get("delivery"))
    except (TypeError, ValueError) as exc:
        raise WorkspaceError(str(exc)) from None
    return data


def apply(store: Store, data: dict[str, Any]) -> None:
    """Write the workspace into an empty store (caller holds the transaction)."""
    ts = store.clock.ts()
    if data.get("demo"):  # generated in bulk: people, segments, templates, message history
        demo_people.populate(store, **data["demo"])
    for i, tpl in enumerate(data.get("templates") or ()):
        _template(store, tpl, i)
    people = data.get("people") or ()
    store.record_changes = False
    try:
        for i, person in enumerate(people):
            _person(store, person, i, ts)
    finally:
        store.record_changes = True
    for i, seg in enumerate(data.get("segments") or ()):
        _segment(store, seg, i, ts)
    for i, broadcast in enumerate(data.get("broadcasts") or ()):
        _broadcast(store, broadcast, i, ts)
    try:
        campaigns.apply(store, data.get("campaigns"), ts)
    except campaigns.CampaignError as exc:
        raise WorkspaceError(str(exc)) from None
    campaigns.baseline(store, SegmentResolver(store.db))


def _template(store: Store, tpl: Any, i: int) -> None:
    where = f"templates[{i}]"
    if not isinstance(tpl, dict) or not isinstance(tpl.get("id"), int):
        raise WorkspaceError(f"{where}: needs an integer 'id'")
    unknown = set(tpl) - {"id", "trigger", "name", "channel", "subject", "body", "from"}
    if unknown:  # a misspelt `subject` would otherwise render nothing, silently
        raise WorkspaceError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    channel = tpl.get("channel", "email")
    if channel not in CHANNELS:
        raise WorkspaceError(f"{where}: channel must be one of {', '.join(CHANNELS)}")
    trigger = tpl.get("trigger")
    name = tpl.get("name") or trigger or f"Template {tpl['id']}"
    # subject, body and from are Liquid (liquid_render.py), rendered into each message.
    content = [tpl.get(k) for k in ("subject", "body", "from")]
    if any(v is not None and not isinstance(v, str) for v in content):
        raise WorkspaceError(f"{where}: subject, body and from must be strings")
    store.db.execute(
        "INSERT INTO templates(id, trigger, name, channel, subject, body, sender)"
        " VALUES(?,?,?,?,?,?,?)",
        (tpl["id"], None if trigger is None else str(trigger), name, channel, *content),
    )


def _person(store: Store, person: Any, i: int, ts: int) -> None:
    where = f"people[{i}]"
    if not isinstance(person, dict) or not (person.get("id") or person.get("email")):
        raise WorkspaceError(f"{where}: needs an 'id' or an 'email'")
    attributes = person.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise WorkspaceError(f"{where}.attributes: must be a mapping")
    pid = person.get("id")
    created = int(person.get("created_at") or attributes.get("created_at") or ts)
    pk = store.identify(
        None if pid is None else str(pid),
        person.get("email"),
        attributes,
        cio_id=person.get("cio_id") or _stable_cio_id(pid or person["email"]),
        ts=created,
        created_at=created,
    )
    for event in person.get("events") or ():
        if not isinstance(event, dict) or not event.get("name"):
            raise WorkspaceError(f"{where}.events: each event needs a 'name'")
        store.add_event(
            pk,
            str(event["name"]),
            event.get("data") or {},
            type=event.get("type", "event"),
            timestamp=int(event.get("timestamp") or created),
            family="workspace",
        )


def _segment(store: Store, seg: Any, i: int, ts: int) -> None:
    where = f"segments[{i}]"
    if not isinstance(seg, dict) or not isinstance(seg.get("id"), int) or not seg.get("name"):
        raise WorkspaceError(f"{where}: needs an integer 'id' and a 'name'")
    kind = seg.get("type") or ("dynamic" if "filter" in seg else "manual")
    if kind not in ("dynamic", "manual"):
        raise WorkspaceError(f"{where}: type must be dynamic or manual")
    flt = seg.get("filter")
    if kind == "dynamic":
        try:
            SegmentResolver(store.db).condition(flt)
        except FilterError as exc:
            raise WorkspaceError(f"{where}.filter: {exc}") from None
    store.db.execute(
        "INSERT INTO segments(id, name, description, type, filter, tags, created_at, updated_at)"
        " VALUES(?,?,?,?,?,?,?,?)",
        (
            seg["id"],
            str(seg["name"]),
            seg.get("description") or "",
            kind,
            None if flt is None else json.dumps(flt),
            dumps(seg.get("tags") or None),
            ts,
            ts,
        ),
    )
    for member in seg.get("members") or ():
        pk = store.find_track(str(member))
        if pk is None:
            raise WorkspaceError(f"{where}.members: no person {member!r}")
        store.db.execute("INSERT OR IGNORE INTO segment_members VALUES(?,?)", (seg["id"], pk))


def _broadcast(store: Store, b: Any, i: int, ts: int) -> None:
    where = f"broadcasts[{i}]"
    if not isinstance(b, dict) or not isinstance(b.get("id"), int) or not b.get("name"):
        raise WorkspaceError(f"{where}: needs an integer 'id' and a 'name'")
    unknown = set(b) - {"id", "name", "channel", "segment", "subject"}
    if unknown:
        raise WorkspaceError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    channel = b.get("channel", "email")
    if channel not in CHANNELS:
        raise WorkspaceError(f"{where}: channel must be one of {', '.join(CHANNELS)}")
    segment = b.get("segment")
    if segment is not None:
        found = store.db.execute("SELECT 1 FROM segments WHERE id=?", (segment,)).fetchone()
        if not isinstance(segment, int) or found is None:
            raise WorkspaceError(f"{where}.segment: no segment {segment!r}")
    if store.db.execute("SELECT 1 FROM broadcasts WHERE id=?", (b["id"],)).fetchone():
        raise WorkspaceError(f"{where}: duplicate id {b['id']}")
    store.db.execute(
        "INSERT INTO broadcasts(id, name, channel, segment_id, subject, created_at)"
        " VALUES(?,?,?,?,?,?)",
        (b["id"], str(b["name"]), channel, segment, b.get("subject"), ts),
    )


def _stable_cio_id(seed: Any) -> str:
    """Workspace people keep the same cio_id across runs, so notebooks can refer to them."""
    import hashlib

    return hashlib.sha1(str(seed).encode()).hexdigest()[:12]
