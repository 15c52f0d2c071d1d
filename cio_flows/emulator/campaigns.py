"""Campaigns from the workspace file: checked, then kept in `programs` (kind `campaign`).

```yaml
campaigns:
  - id: 10
    name: Welcome series
    trigger: {event: signed_up}          # or {segment: 1}: on entering the segment
    filter: {attribute: {field: country, operator: eq, value: DE}}   # optional audience
    actions:
      - {wait: 2}                         # seconds, or "2h", "1d"
      - {send: welcome}                   # a template, by trigger name or id
      - {wait: 1d}
      - {send: win_back, when: {attribute: {field: plan, operator: eq, value: free}}}
```
A send action's id is `id` if given, else campaign id * 1000 + its position (1-based); the App
API lists the send actions (`/v1/campaigns/{id}` `actions`), as Customer.io lists message actions.
`details` holds what the App API shows (`type`, `segment`, `event_name`, `actions`) and the
journey journeys.py runs (`steps`).
"""

from __future__ import annotations

import json
from typing import Any

from .clock import ClockError, parse_duration
from .filters import FilterError, SegmentResolver
from .records import dumps
from .store import Store

# The App API's action `type` per template channel (SMS goes out through Twilio).
ACTION_TYPE = {"sms": "twilio", "inbox_message": "inbox"}
_CAMPAIGN_KEYS = {"id", "name", "trigger", "filter", "actions", "description", "tags"}
_ACTION_KEYS = {"wait", "send", "when", "id", "name"}


class CampaignError(ValueError):
    """A campaign the emulator cannot run; the message names the entry."""


def apply(store: Store, campaigns: Any, ts: int) -> None:
    """Check the workspace's campaigns and store them (caller holds the transaction)."""
    if campaigns is None:
        return
    if not isinstance(campaigns, list):
        raise CampaignError("campaigns: expected a list")
    for i, campaign in enumerate(campaigns):
        details = _check(store, campaign, f"campaigns[{i}]")
        store.db.execute(
            "INSERT INTO programs(kind, id, name, channel, created_at, details)"
            " VALUES('campaign',?,?,?,?,?)",
            (campaign["id"], str(campaign["name"]), "email", ts, dumps(details)),
        )


def _check(store: Store, c: Any, where: str) -> dict[str, Any]:
    if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not c.get("name"):
        raise CampaignError(f"{where}: needs an integer 'id' and a 'name'")
    unknown = set(c) - _CAMPAIGN_KEYS
    if unknown:
        raise CampaignError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    taken = store.db.execute(
        "SELECT 1 FROM programs WHERE kind='campaign' AND id=?", (c["id"],)
    ).fetchone()
    if taken:
        raise CampaignError(f"{where}: duplicate campaign id {c['id']}")
    details: dict[str, Any] = {"description": str(c.get("description") or "")}
    details["tags"] = [str(t) for t in c.get("tags") or ()]
    trigger = c.get("trigger")
    if isinstance(trigger, dict) and set(trigger) == {"event"} and trigger["event"]:
        details.update(type="event", event_name=str(trigger["event"]))
    elif isinstance(trigger, dict) and set(trigger) == {"segment"}:
        segment = trigger["segment"]
        found = store.db.execute("SELECT 1 FROM segments WHERE id=?", (segment,)).fetchone()
        if isinstance(segment, bool) or not isinstance(segment, int) or found is None:
            raise CampaignError(f"{where}.trigger.segment: no segment {segment!r}")
        details.update(type="segment", segment=segment)
    else:
        raise CampaignError(f"{where}.trigger: expected {{event: NAME}} or {{segment: ID}}")
    details["filter"] = _filter(store, c.get("filter"), f"{where}.filter")
    actions = c.get("actions")
    if not isinstance(actions, list) or not actions:
        raise CampaignError(f"{where}.actions: expected a non-empty list")
    steps = [_action(store, c["id"], a, n, f"{where}.actions[{n}]") for n, a in enumerate(actions)]
    details["steps"] = steps
    details["actions"] = [[s["id"], s["type"]] for s in steps if "send" in s]
    return details


def _filter(store: Store, flt: Any, where: str) -> Any:
    if flt is None:
        return None
    try:
        SegmentResolver(store.db).condition(flt)
    except FilterError as exc:
        raise CampaignError(f"{where}: {exc}") from None
    return flt


def _action(store: Store, campaign_id: int, a: Any, n: int, where: str) -> dict[str, Any]:
    if not isinstance(a, dict) or len({"wait", "send"} & set(a)) != 1:
        raise CampaignError(f"{where}: expected {{wait: DURATION}} or {{send: TEMPLATE}}")
    unknown = set(a) - _ACTION_KEYS
    if unknown:
        raise CampaignError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    if "wait" in a:
        if set(a) - {"wait"}:
            raise CampaignError(f"{where}: a wait takes no other keys")
        try:
            return {"wait": parse_duration(a["wait"], f"{where}.wait")}
        except ClockError as exc:
            raise CampaignError(str(exc)) from None
    template = _template(store, a["send"], f"{where}.send")
    action_id = a.get("id", campaign_id * 1000 + n + 1)
    if isinstance(action_id, bool) or not isinstance(action_id, int):
        raise CampaignError(f"{where}.id: expected an integer")
    return {
        "send": template["id"],
        "id": action_id,
        "name": str(a.get("name") or template["name"]),
        "type": ACTION_TYPE.get(template["channel"], template["channel"]),
        "when": _filter(store, a.get("when"), f"{where}.when"),
    }


def _template(store: Store, ref: Any, where: str) -> dict[str, Any]:
    arg: int | str
    if isinstance(ref, int) and not isinstance(ref, bool):
        sql, arg = "SELECT id, name, channel FROM templates WHERE id=?", ref
    elif isinstance(ref, str) and ref:
        sql, arg = "SELECT id, name, channel FROM templates WHERE lower(trigger)=?", ref.lower()
    else:
        raise CampaignError(f"{where}: expected a template id or trigger name")
    row = store.db.execute(sql, (arg,)).fetchone()
    if row is None:
        raise CampaignError(f"{where}: no template {ref!r} in the workspace's templates")
    return {"id": row[0], "name": row[1], "channel": row[2]}


def definitions(store: Store) -> list[dict[str, Any]]:
    """Every runnable campaign: {id, name, type, event_name|segment, filter, steps}."""
    out = []
    for cid, name, details in store.db.execute(
        "SELECT id, name, details FROM programs WHERE kind='campaign' ORDER BY id"
    ):
        extra = json.loads(details)
        if "steps" in extra:  # the generated demo's campaigns only have a message history
            out.append({"id": cid, "name": name, **extra})
    return out


# -- journey bookkeeping: who is where in which campaign (journeys.py runs them) -------------

# People are kept by cio_id, never by pk: SQLite hands a deleted person's pk to the next one.
# A trigger queues the events that start a campaign as they are stored (event ids are reused
# the same way, so "events after the last one seen" would miss some).
JOURNEY_SCHEMA = """
CREATE TABLE IF NOT EXISTS journeys(
  jid INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL, cio_id TEXT NOT NULL,
  step INTEGER NOT NULL, due_f REAL NOT NULL, event TEXT, done INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS journeys_due ON journeys(done, due_f);
CREATE TABLE IF NOT EXISTS journey_entries(
  campaign_id INTEGER NOT NULL, cio_id TEXT NOT NULL, PRIMARY KEY(campaign_id, cio_id))
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journey_events(
  qid INTEGER PRIMARY KEY AUTOINCREMENT, cio_id TEXT, name TEXT NOT NULL, data TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS journey_event_stored AFTER INSERT ON events
  WHEN NEW.pk IS NOT NULL AND NEW.type = 'event' AND EXISTS (
    SELECT 1 FROM programs WHERE kind = 'campaign'
    AND json_extract(details, '$.event_name') = NEW.name)
  BEGIN INSERT INTO journey_events(cio_id, name, data)
    VALUES((SELECT cio_id FROM people WHERE pk = NEW.pk), NEW.name, NEW.data); END;
"""
JOURNEY_TABLES = ("journeys", "journey_entries", "journey_events")


def install(store: Store) -> None:
    store.db.executescript(JOURNEY_SCHEMA)


def wipe(store: Store) -> None:
    for table in JOURNEY_TABLES:
        store.db.execute(f"DELETE FROM {table}")


def baseline(store: Store, resolver: SegmentResolver) -> None:
    """What the workspace starts with does not trigger anything: the people already in a
    trigger segment have already entered (its events came before its campaigns, so none are
    queued). The caller holds the transaction."""
    for campaign in definitions(store):
        if campaign["type"] == "segment":
            sql, args = resolver.segment_condition(campaign["segment"])
            store.db.execute(
                "INSERT OR IGNORE INTO journey_entries"
                f" SELECT ?, p.cio_id FROM people p WHERE {sql}",
                [campaign["id"], *args],
            )
