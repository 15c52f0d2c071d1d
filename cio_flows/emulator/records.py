"""Devices, objects, relationships and deliveries: the Store's secondary records."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Records:
    db: sqlite3.Connection

    # -- devices and objects -----------------------------------------------------------------

    def put_device(self, pk: int, device: dict[str, Any]) -> None:
        device_id = str(device.get("id") or device.get("token"))
        extra = {
            k: v for k, v in device.items() if k not in ("id", "token", "platform", "last_used")
        }
        attributes = {**extra.pop("attributes", {}), **extra}
        self.db.execute(
            "INSERT INTO devices(pk, device_id, platform, last_used, attributes) VALUES(?,?,?,?,?)"
            " ON CONFLICT(pk, device_id) DO UPDATE SET platform=excluded.platform,"
            " last_used=excluded.last_used, attributes=excluded.attributes",
            (
                pk,
                device_id,
                device.get("platform"),
                device.get("last_used") or int(time.time()),
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

    def relate(self, pk: int, type_id: str, object_id: str, *, remove: bool = False) -> None:
        if remove:
            self.db.execute(
                "DELETE FROM relationships WHERE pk=? AND type_id=? AND object_id=?",
                (pk, type_id, object_id),
            )
        else:
            self.db.execute(
                "INSERT OR IGNORE INTO relationships VALUES(?,?,?)", (pk, type_id, object_id)
            )

    # -- deliveries --------------------------------------------------------------------------

    def add_delivery(self, delivery: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO deliveries(delivery_id, pk, channel, template_id, template, identifiers,"
            " recipient, subject, body, queued_at, send_at) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
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
            ),
        )

    def deliveries(self, pk: int | None = None) -> list[dict[str, Any]]:
        """Recorded sends, oldest first (all of them, or one person's)."""
        sql = (
            "SELECT seq, delivery_id, pk, channel, template_id, template, identifiers,"
            " recipient, subject, body, queued_at, send_at FROM deliveries"
        )
        if pk is not None:
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
            }
            for r in rows
        ]
