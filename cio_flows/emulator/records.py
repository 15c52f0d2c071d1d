"""Devices, objects, relationships and deliveries: the Store's secondary records."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clock import Clock


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Records:
    db: sqlite3.Connection
    clock: Clock

    # -- devices and objects -----------------------------------------------------------------

    def put_device(self, pk: int, device: dict[str, Any]) -> None:
        device_id = str(device.get("id") or device.get("token"))
        extra = {
            k: v for k, v in device.items() if k not in ("id", "token", "platform", "last_used")
        }
        attributes = {**(extra.pop("attributes", None) or {}), **extra}
        # A token belongs to one person: registering it elsewhere moves it, as Customer.io does.
        self.db.execute("DELETE FROM devices WHERE device_id=? AND pk<>?", (device_id, pk))
        self.db.execute(
            "INSERT INTO devices(pk, device_id, platform, last_used, attributes) VALUES(?,?,?,?,?)"
            " ON CONFLICT(pk, device_id) DO UPDATE SET platform=excluded.platform,"
            " last_used=excluded.last_used, attributes=excluded.attributes",
            (
                pk,
                device_id,
                device.get("platform"),
                device.get("last_used") or self.clock.ts(),
                dumps(attributes),
            ),
        )

    def delete_device(self, pk: int | None, device_id: str) -> None:
        if pk is None:
            self.db.execute("DELETE FROM devices WHERE device_id=?", (device_id,))
        else:
            self.db.execute("DELETE FROM devices WHERE pk=? AND device_id=?", (pk, device_id))

    def devices(self, pk: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT pk, device_id, platform, last_used, attributes FROM devices"
        rows = self.db.execute(sql + (" WHERE pk=?" if pk else ""), (pk,) if pk else ())
        return [
            {
                "pk": r[0],
                "id": r[1],
                "platform": r[2],
                "last_used": r[3],
                "attributes": json.loads(r[4]),
            }
            for r in rows
        ]

    def put_object(self, type_id: str, object_id: str, attributes: dict[str, Any]) -> None:
        row = self.db.execute(
            "SELECT attributes FROM objects WHERE type_id=? AND object_id=?", (type_id, object_id)
        ).fetchone()
        merged = {**(json.loads(row[0]) if row else {}), **attributes}
        self.db.execute(
            "INSERT OR REPLACE INTO objects VALUES(?,?,?)", (type_id, object_id, dumps(merged))
        )

    def delete_object(self, type_id: str, object_id: str) -> None:
        self.db.execute("DELETE FROM objects WHERE type_id=? AND object_id=?", (type_id, object_id))
        self.db.execute(
            "DELETE FROM relationships WHERE type_id=? AND object_id=?", (type_id, object_id)
        )

    def relate(
        self,
        pk: int,
        type_id: str,
        object_id: str,
        *,
        remove: bool = False,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        if remove:
            self.db.execute(
                "DELETE FROM relationships WHERE pk=? AND type_id=? AND object_id=?",
                (pk, type_id, object_id),
            )
            return
        row = self.db.execute(
            "SELECT attributes FROM relationships WHERE pk=? AND type_id=? AND object_id=?",
            (pk, type_id, object_id),
        ).fetchone()
        merged = json.loads(row[0]) if row else {}
        for name, value in (attributes or {}).items():
            if value is None or value == "":  # null or "" removes a relationship attribute
                merged.pop(name, None)
            else:
                merged[name] = value
        self.db.execute(
            "INSERT OR REPLACE INTO relationships(pk, type_id, object_id, attributes)"
            " VALUES(?,?,?,?)",
            (pk, type_id, object_id, dumps(merged)),
        )

    def objects(self) -> list[dict[str, Any]]:
        """Objects with their related people (pk) and relationship attributes."""
        related: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for pk, type_id, object_id, attrs in self.db.execute(
            "SELECT pk, type_id, object_id, attributes FROM relationships ORDER BY pk"
        ):
            related.setdefault((type_id, object_id), []).append(
                {"pk": pk, "attributes": json.loads(attrs)}
            )
        rows = self.db.execute(
            "SELECT type_id, object_id, attributes FROM objects ORDER BY type_id, object_id"
        )
        return [
            {
                "object_type_id": t,
                "object_id": o,
                "attributes": json.loads(a),
                "relationships": related.get((t, o), []),
            }
            for t, o, a in rows
        ]

    # -- deliveries --------------------------------------------------------------------------

    def add_delivery(self, delivery: dict[str, Any]) -> None:
        """One message. `created_f`/`start_f` (float seconds) drive the delivery lifecycle that
        messages.py derives on read; `outcome` is delivered, bounced, undeliverable or drafted."""
        self.db.execute(
            "INSERT INTO deliveries(delivery_id, pk, channel, template_id, template, identifiers,"
            " recipient, subject, body, queued_at, send_at, kind, broadcast_id, trigger_id,"
            " created_f, start_f, outcome, failure, campaign_id, action_id, content)"
            " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                delivery["id"],
                delivery["pk"],
                delivery["channel"],
                delivery["template_id"],
                delivery["template"],
                dumps(delivery["identifiers"]),
                delivery["recipient"],
                delivery["subject"],
                dumps(delivery["body"]),
                delivery["created"],
                delivery["send_at"],
                delivery.get("kind", "transactional"),
                delivery.get("broadcast_id"),
                delivery.get("trigger_id"),
                delivery.get("created_f", delivery["created"]),
                delivery.get("start_f", delivery["created"]),
                delivery.get("outcome", "delivered"),
                delivery.get("failure"),
                delivery.get("campaign_id"),
                delivery.get("action_id"),
                delivery.get("content"),
            ),
        )

    def deliveries(
        self,
        pk: int | None = None,
        *,
        delivery_id: str | None = None,
        seqs: list[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded messages, oldest first (all of them, one person's, or one by id)."""
        sql = (
            "SELECT seq, delivery_id, pk, channel, template_id, template, identifiers,"
            " recipient, subject, body, queued_at, send_at, kind, broadcast_id, trigger_id,"
            " created_f, start_f, outcome, failure, campaign_id, newsletter_id, action_id,"
            " metrics, content FROM deliveries"
        )
        if seqs is not None:
            marks = ",".join("?" * len(seqs))
            rows = self.db.execute(sql + f" WHERE seq IN ({marks}) ORDER BY seq", list(seqs))
        elif delivery_id is not None:
            rows = self.db.execute(sql + " WHERE delivery_id=?", (delivery_id,))
        elif pk is not None:
            rows = self.db.execute(sql + " WHERE pk=? ORDER BY seq", (pk,))
        else:
            rows = self.db.execute(sql + " ORDER BY seq")
        return [
            {
                "seq": r[0],
                "id": r[1],
                "pk": r[2],
                "channel": r[3],
                "template_id": r[4],
                "template": r[5],
                "identifiers": json.loads(r[6]),
                "recipient": r[7],
                "subject": r[8],
                "body": json.loads(r[9]),
                "created": r[10],
                "send_at": r[11],
                "kind": r[12],
                "broadcast_id": r[13],
                "trigger_id": r[14],
                "created_f": r[15] if r[15] is not None else float(r[10]),
                "start_f": r[16] if r[16] is not None else float(r[10]),
                "outcome": r[17] or "delivered",
                "failure": r[18],
                "campaign_id": r[19],
                "newsletter_id": r[20],
                "action_id": r[21],
                "metrics": json.loads(r[22]) if r[22] else None,
                "content": r[23],  # the rendered body (liquid_render.py), None if none
            }
            for r in rows
        ]
