"""Values read from Parquet or a database as a row from a JSON file has them, so templates and
request bodies see the same types whatever the source."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return plain_record(value)
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return str(value)  # UUIDs, intervals, ...: as text


def plain_record(record: dict[Any, Any]) -> dict[str, Any]:
    return {str(name): plain(value) for name, value in record.items()}
