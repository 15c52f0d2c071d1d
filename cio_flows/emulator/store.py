"""SQLite state: people, attributes, events, devices, segments, deliveries, templates.

One connection, used only from the server's event-loop thread, so requests never interleave inside
a transaction. Attribute values are kept twice: as JSON (the value as sent) and as the string form
Customer.io's App API shows, which is also what search filters compare against.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .clock import Clock
from .records import Records, dumps

SCHEMA = """
CREATE TABLE IF NOT EXISTS people(
  pk INTEGER PRIMARY KEY, cio_id TEXT NOT NULL UNIQUE, id TEXT UNIQUE, email TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS people_email ON people(email);
CREATE TABLE IF NOT EXISTS attrs(
  pk INTEGER NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, str TEXT NOT NULL,
  ts INTEGER NOT NULL, PRIMARY KEY(pk, name)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS attrs_name_str ON attrs(name, str);
CREATE TABLE IF NOT EXISTS events(
  eid INTEGER PRIMARY KEY, pk INTEGER, anonymous_id TEXT, name TEXT NOT NULL, type TEXT NOT NULL,
  data TEXT NOT NULL, timestamp INTEGER NOT NULL, family TEXT NOT NULL, message_id TEXT);
CREATE INDEX IF NOT EXISTS events_pk ON events(pk);
CREATE INDEX IF NOT EXISTS events_anon ON events(anonymous_id);
CREATE INDEX IF NOT EXISTS events_ts ON events(timestamp);
CREATE INDEX IF NOT EXISTS events_pk_ts ON events(pk, timestamp);
CREATE TABLE IF NOT EXISTS dedupe(key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS suppressions(identifier TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS esp_suppressions(
  email TEXT NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY(email, type)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reporting_webhooks(id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS imports(id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snippets(
  name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collections(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, data TEXT NOT NULL, url TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS devices(
  pk INTEGER NOT NULL, device_id TEXT NOT NULL, platform TEXT, last_used INTEGER,
  attributes TEXT NOT NULL DEFAULT '{}', PRIMARY KEY(pk, device_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
  type TEXT NOT NULL, filter TEXT, tags TEXT, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS segment_members(
  segment_id INTEGER NOT NULL, pk INTEGER NOT NULL, PRIMARY KEY(segment_id, pk)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS templates(
  id INTEGER PRIMARY KEY, trigger TEXT UNIQUE, name TEXT NOT NULL, channel TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries(
  seq INTEGER PRIMARY KEY, delivery_id TEXT NOT NULL UNIQUE, pk INTEGER, channel TEXT NOT NULL,
  template_id INTEGER, template TEXT, identifiers TEXT NOT NULL, recipient TEXT, subject TEXT,
  body TEXT NOT NULL, queued_at INTEGER NOT NULL, send_at INTEGER,
  kind TEXT NOT NULL DEFAULT 'transactional', broadcast_id INTEGER, trigger_id INTEGER,
  created_f REAL, start_f REAL, outcome TEXT, failure TEXT, campaign_id INTEGER,
  newsletter_id INTEGER, action_id INTEGER, metrics TEXT);
CREATE INDEX IF NOT EXISTS deliveries_pk ON deliveries(pk);
CREATE TABLE IF NOT EXISTS programs(
  kind TEXT NOT NULL, id INTEGER NOT NULL, name TEXT NOT NULL, channel TEXT NOT NULL,
  created_at INTEGER NOT NULL, details TEXT NOT NULL DEFAULT '{}', PRIMARY KEY(kind, id));
CREATE TABLE IF NOT EXISTS exports(
  id INTEGER PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL, created_f REAL NOT NULL,
  ready_f REAL NOT NULL, total INTEGER NOT NULL, downloads INTEGER NOT NULL DEFAULT 0,
  file BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS changes(
  cid INTEGER PRIMARY KEY, pk INTEGER NOT NULL, name TEXT NOT NULL, old TEXT, new TEXT,
  ts INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS changes_pk ON changes(pk);
CREATE INDEX IF NOT EXISTS changes_ts ON changes(ts);
CREATE INDEX IF NOT EXISTS changes_pk_ts ON changes(pk, ts);
CREATE TABLE IF NOT EXISTS broadcasts(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, channel TEXT NOT NULL, segment_id INTEGER,
  subject TEXT, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS triggers(
  id INTEGER PRIMARY KEY, broadcast_id INTEGER NOT NULL, created_f REAL NOT NULL,
  process_f REAL NOT NULL, body TEXT NOT NULL, recipients_count INTEGER NOT NULL,
  errors TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects(
  type_id TEXT NOT NULL, object_id TEXT NOT NULL, attributes TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY(type_id, object_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS relationships(
  pk INTEGER NOT NULL, type_id TEXT NOT NULL, object_id TEXT NOT NULL,
  attributes TEXT NOT NULL DEFAULT '{}', PRIMARY KEY(pk, type_id, object_id)) WITHOUT ROWID;
"""

# Columns added after the first release: a database file made by an older emulator gains them.
ADDED_COLUMNS = {
    "deliveries": [
        ("kind", "TEXT NOT NULL DEFAULT 'transactional'"),
        ("broadcast_id", "INTEGER"),
        ("trigger_id", "INTEGER"),
        ("created_f", "REAL"),
        ("start_f", "REAL"),
        ("outcome", "TEXT"),
        ("failure", "TEXT"),
        ("campaign_id", "INTEGER"),
        ("newsletter_id", "INTEGER"),
        ("action_id", "INTEGER"),
        ("metrics", "TEXT"),
        ("content", "TEXT"),  # the message body as rendered for its recipient
    ],
    # A template's content, rendered with Liquid into each message (liquid_render.py).
    "templates": [("subject", "TEXT"), ("body", "TEXT"), ("sender", "TEXT")],
    "relationships": [("attributes", "TEXT NOT NULL DEFAULT '{}'")],
}

TABLES = [
    "people",
    "attrs",
    "events",
    "dedupe",
    "suppressions",
    "esp_suppressions",
    "reporting_webhooks",
    "snippets",
    "imports",
    "collections",
    "devices",
    "segments",
    "segment_members",
    "templates",
    "deliveries",
    "objects",
    "relationships",
    "changes",
    "broadcasts",
    "triggers",
    "programs",
    "exports",
]

# Identifier kinds a person can be found by.
ID, EMAIL, CIO_ID = "id", "email", "cio_id"


def now() -> int:
    return int(time.time())


def new_cio_id() -> str:
    return os.urandom(6).hex()


def as_string(value: Any) -> str:
    """The string form the App API shows for an attribute value."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Store(Records):
    """All state; every method runs on the loop thread inside the caller's transaction."""

    # False while a workspace loads: its people are initial state, not attribute changes.
    record_changes = True

    def __init__(self, path: str | None = None, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()  # the emulator's clock (clock.py) stamps what is stored
        self.db = sqlite3.connect(path or ":memory:", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, decl in columns:
                if name not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One transaction: all of a request's writes land, or none do."""
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def wipe(self) -> None:
        for table in TABLES:
            self.db.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        self.db.close()

    # -- people -----------------------------------------------------------------------------

    def find(self, kind: str, value: str) -> int | None:
        """The person's pk, or None. An email may be shared; the oldest person wins."""
        if kind == CIO_ID:
            sql = "SELECT pk FROM people WHERE cio_id=?"
        elif kind == EMAIL:
            sql = "SELECT pk FROM people WHERE email=? ORDER BY pk LIMIT 1"
        else:
            sql = "SELECT pk FROM people WHERE id=?"
        row = self.db.execute(sql, (value,)).fetchone()
        return row[0] if row else None

    def find_track(self, identifier: str) -> int | None:
        """Track path identifiers: `cio_<cio_id>`, an id, or an email."""
        kind, value = track_identifier(identifier)
        pk = self.find(kind, value)
        if pk is None and kind == EMAIL:
            pk = self.find(ID, value)  # a workspace may use emails as ids
        return pk

    def is_suppressed(self, *identifiers: str | None) -> bool:
        values = [v for v in identifiers if v]
        if not values:
            return False
        marks = ",".join("?" * len(values))
        sql = f"SELECT 1 FROM suppressions WHERE identifier IN ({marks}) LIMIT 1"
        return self.db.execute(sql, values).fetchone() is not None

    def identify(
        self,
        id: str | None = None,
        email: str | None = None,
        attributes: dict[str, Any] | None = None,
        *,
        cio_id: str | None = None,
        update_only: bool = False,
        ts: int | None = None,
        created_at: int | None = None,
    ) -> int | None:
        """Create or update a person; None when suppressed or (update_only) unknown."""
        if self.is_suppressed(id, email):
            return None
        ts = ts or self.clock.ts()
        pk = None
        if cio_id:
            pk = self.find(CIO_ID, cio_id)
        if pk is None and id:
            pk = self.find(ID, id)
        if pk is None and email:
            row = self.db.execute(
                "SELECT pk, id FROM people WHERE email=? ORDER BY pk LIMIT 1", (email,)
            ).fetchone()
            # An email-only person gains the id; a person with another id is someone else.
            if row and (not id or row[1] is None):
                pk = row[0]
        if pk is None:
            if update_only:
                return None
            pk = inserted_id(
                self.db.execute(
                    "INSERT INTO people(cio_id, id, email, created_at, updated_at) VALUES(?,?,?,?,?)",
                    (cio_id or new_cio_id(), id, email, created_at or ts, ts),
                )
            )
            if email:
                self.record_change(pk, "email", None, email, ts)
        else:
            self._set_identifiers(pk, id, email, ts)
        if attributes:
            self.set_attributes(pk, attributes, ts)
        return pk

    def _set_identifiers(self, pk: int, id: str | None, email: str | None, ts: int) -> None:
        if not (id or email):
            return
        old_id, old_email = self.db.execute(
            "SELECT id, email FROM people WHERE pk=?", (pk,)
        ).fetchone()
        if id and id != old_id:
            self.db.execute("UPDATE people SET id=?, updated_at=? WHERE pk=?", (id, ts, pk))
            self.record_change(pk, "id", old_id, id, ts)
        if email and email != old_email:
            self.db.execute("UPDATE people SET email=?, updated_at=? WHERE pk=?", (email, ts, pk))
            self.record_change(pk, "email", old_email, email, ts)

    def record_change(self, pk: int, name: str, old: str | None, new: str | None, ts: int) -> None:
        """An attribute_change activity (values as the App API shows them)."""
        if not self.record_changes:
            return
        self.db.execute(
            "INSERT INTO changes(pk, name, old, new, ts) VALUES(?,?,?,?,?)",
            (pk, name, old or "", new or "", ts),
        )

    def set_attributes(self, pk: int, attributes: dict[str, Any], ts: int | None = None) -> None:
        """Set attributes; None or "" removes one, as Customer.io does."""
        ts = ts or self.clock.ts()
        old = dict(self.db.execute("SELECT name, str FROM attrs WHERE pk=?", (pk,)).fetchall())
        put, drop, changes = [], [], []
        for name, value in attributes.items():
            if value is None or value == "":
                if name in old:
                    drop.append((pk, name))
                    changes.append((pk, name, old[name], "", ts))
            else:
                text = as_string(value)
                put.append((pk, name, dumps(value), text, ts))
                if old.get(name) != text:
                    changes.append((pk, name, old.get(name, ""), text, ts))
        if changes and self.record_changes:
            self.db.executemany(
                "INSERT INTO changes(pk, name, old, new, ts) VALUES(?,?,?,?,?)", changes
            )
        if put:
            self.db.executemany(
                "INSERT INTO attrs(pk,name,value,str,ts) VALUES(?,?,?,?,?) "
                "ON CONFLICT(pk,name) DO UPDATE SET value=excluded.value, str=excluded.str, "
                "ts=CASE WHEN attrs.str=excluded.str THEN attrs.ts ELSE excluded.ts END",
                put,
            )
        if drop:
            self.db.executemany("DELETE FROM attrs WHERE pk=? AND name=?", drop)
        self.db.execute("UPDATE people SET updated_at=? WHERE pk=?", (ts, pk))

    def delete_person(self, pk: int) -> None:
        """Delete the person and their data (deliveries stay, detached, for inspection)."""
        for table in ("attrs", "events", "devices", "segment_members", "relationships", "changes"):
            self.db.execute(f"DELETE FROM {table} WHERE pk=?", (pk,))
        self.db.execute("UPDATE deliveries SET pk=NULL WHERE pk=?", (pk,))
        self.db.execute("DELETE FROM people WHERE pk=?", (pk,))

    def suppress(self, pk: int) -> None:
        """Suppression deletes the person and keeps their identifiers from coming back."""
        row = self.db.execute("SELECT id, email FROM people WHERE pk=?", (pk,)).fetchone()
        for value in row or ():
            if value:
                self.db.execute("INSERT OR IGNORE INTO suppressions VALUES(?)", (value,))
        self.delete_person(pk)

    def unsuppress(self, *identifiers: str) -> None:
        for value in identifiers:
            self.db.execute("DELETE FROM suppressions WHERE identifier=?", (value,))

    def merge(self, primary: int, secondary: int) -> None:
        """Fold secondary into primary: primary's values win, history moves over."""
        if primary == secondary:
            return
        self.db.execute(
            "INSERT OR IGNORE INTO attrs(pk,name,value,str,ts) "
            "SELECT ?, name, value, str, ts FROM attrs WHERE pk=?",
            (primary, secondary),
        )
        for table in ("events", "deliveries", "changes"):
            self.db.execute(f"UPDATE {table} SET pk=? WHERE pk=?", (primary, secondary))
        for table in ("devices", "segment_members", "relationships"):
            self.db.execute(f"UPDATE OR IGNORE {table} SET pk=? WHERE pk=?", (primary, secondary))
        email = self.db.execute("SELECT email FROM people WHERE pk=?", (secondary,)).fetchone()
        self.delete_person(secondary)
        if email and email[0]:
            self.db.execute(
                "UPDATE people SET email=? WHERE pk=? AND email IS NULL", (email[0], primary)
            )

    def known_person(self, pk: int) -> dict[str, Any]:
        """A person whose pk the store just gave (one that is gone is a bug: KeyError)."""
        person = self.person(pk)
        if person is None:
            raise KeyError(f"no person with pk {pk}")
        return person

    def person(self, pk: int) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT pk, cio_id, id, email, created_at, updated_at FROM people WHERE pk=?", (pk,)
        ).fetchone()
        return _person_row(row) if row else None

    def attributes(self, pk: int) -> list[tuple[str, Any, str, int]]:
        rows = self.db.execute(
            "SELECT name, value, str, ts FROM attrs WHERE pk=? ORDER BY name", (pk,)
        ).fetchall()
        return [(name, json.loads(value), text, ts) for name, value, text, ts in rows]

    def people(self, pks: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Full person records (for inspection), oldest first."""
        rows = self.db.execute(
            "SELECT pk, cio_id, id, email, created_at, updated_at FROM people ORDER BY pk"
        ).fetchall()
        wanted = set(pks) if pks is not None else None
        attrs: dict[int, dict[str, Any]] = {}
        for pk, name, value in self.db.execute("SELECT pk, name, value FROM attrs"):
            attrs.setdefault(pk, {})[name] = json.loads(value)
        out = []
        for row in rows:
            if wanted is not None and row[0] not in wanted:
                continue
            person = _person_row(row)
            person["attributes"] = attrs.get(row[0], {})
            out.append(person)
        return out

    # -- events and dedupe -------------------------------------------------------------------

    def first_time(self, key: str) -> bool:
        """Record a dedupe key; False if it was already seen."""
        cur = self.db.execute("INSERT OR IGNORE INTO dedupe(key) VALUES(?)", (key,))
        return cur.rowcount == 1

    def add_event(
        self,
        pk: int | None,
        name: str,
        data: Any = None,
        *,
        type: str = "event",
        timestamp: int | None = None,
        family: str = "track",
        anonymous_id: str | None = None,
        message_id: str | None = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO events(pk, anonymous_id, name, type, data, timestamp, family, message_id)"
            " VALUES(?,?,?,?,?,?,?,?)",
            (
                pk,
                anonymous_id,
                name,
                type,
                dumps(data or {}),
                timestamp or self.clock.ts(),
                family,
                message_id,
            ),
        )

    def adopt_anonymous(self, pk: int, anonymous_id: str) -> None:
        """Anonymous activity joins the person once they are identified."""
        self.db.execute(
            "UPDATE events SET pk=? WHERE anonymous_id=? AND pk IS NULL", (pk, anonymous_id)
        )


def track_identifier(identifier: str) -> tuple[str, str]:
    """How the Track API reads a path identifier."""
    if identifier.startswith("cio_"):
        return CIO_ID, identifier[4:]
    if "@" in identifier:
        return EMAIL, identifier
    return ID, identifier


def _person_row(row: tuple) -> dict[str, Any]:
    pk, cio_id, id, email, created_at, updated_at = row
    return {
        "pk": pk,
        "cio_id": cio_id,
        "id": id,
        "email": email,
        "created_at": created_at,
        "updated_at": updated_at,
    }


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid an INSERT just made (sqlite3 types it optional: None only for other statements)."""
    rowid = cursor.lastrowid
    if rowid is None:
        raise RuntimeError("not an INSERT")
    return rowid
