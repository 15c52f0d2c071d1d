"""A local cache of reads: each DataFrame a Parquet file, keyed by workspace, region, call and
its parameters, stamped with the time it was read.

    <root>/<workspace hash>/<call>-<parameters hash>.parquet

The workspace hash is a SHA-256 over the App API's URL, the region and a SHA-256 fingerprint of
the App key: the same workspace finds its files again, a key cannot be read back from a path or
a file, and files hold only the DataFrame and {call, parameters, read_at}. A read answers from
the cache unless `refresh=True` or the file is older than `max_age`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .freshness import stamp

META_KEY = b"cio_flows"
Setting = str | Path | bool | None
DEFAULT_MAX_AGE = 24 * 3600.0


def default_root() -> Path:
    """Under the user's cache directory (platformdirs), e.g. ~/.cache/cio-flows/reads."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("cio-flows")) / "reads"


def workspace_identity(app_url: str, region: str, app_key: str, nonce: str = "") -> str:
    """A stable, non-reversible name for a workspace (`nonce`: one emulator's lifetime)."""
    fingerprint = hashlib.sha256(app_key.encode()).hexdigest()
    text = "\0".join(("cio-flows-cache-1", app_url.rstrip("/"), region, fingerprint, nonce))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _canonical(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


class ReadCache:
    def __init__(self, root: Path, identity: str, max_age: float | None = DEFAULT_MAX_AGE):
        self.folder = Path(root).expanduser() / identity
        self.max_age = max_age
        self.hits = 0

    def path(self, call: str, params: dict[str, Any]) -> Path:
        digest = hashlib.sha256(_canonical(params).encode()).hexdigest()[:24]
        return self.folder / f"{call}-{digest}.parquet"

    def get(
        self, call: str, params: dict[str, Any], max_age: float | None = None
    ) -> pd.DataFrame | None:
        """The cached frame, or None when absent, unreadable, or older than max_age."""
        import pyarrow.parquet as pq

        path = self.path(call, params)
        if not path.is_file():
            return None
        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
        except (OSError, ValueError):
            return None  # a torn or foreign file: read again
        limit = self.max_age if max_age is None else max_age
        if meta.get("params") != json.loads(_canonical(params)):
            return None
        if limit is not None and time.time() - float(meta.get("read_at", 0)) > limit:
            return None
        frame = table.to_pandas()
        for column in meta.get("json_columns", []):
            frame[column] = frame[column].map(lambda v: None if v is None else json.loads(v))
        self.hits += 1
        return stamp(frame, float(meta.get("read_at", 0)), from_cache=True)

    def put(self, call: str, params: dict[str, Any], frame: pd.DataFrame) -> None:
        """Write atomically (a temporary file renamed), so a reader never sees half a file."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        stored = frame.copy()
        stored.attrs = {}
        json_columns = [
            c
            for c in stored.columns
            if stored[c].dtype == object
            and stored[c].map(lambda v: isinstance(v, dict | list)).any()
        ]
        for column in json_columns:
            stored[column] = stored[column].map(
                lambda v: None if v is None else json.dumps(v, default=str)
            )
        table = pa.Table.from_pandas(stored, preserve_index=True)
        meta = {"call": call, "params": json.loads(_canonical(params)), "read_at": time.time()}
        meta["json_columns"] = json_columns
        schema_meta = {**(table.schema.metadata or {}), META_KEY: json.dumps(meta).encode()}
        table = table.replace_schema_metadata(schema_meta)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(call, params)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        pq.write_table(table, temporary)
        os.replace(temporary, path)

    def clear(self) -> int:
        """Forget every cached read of this workspace (after a write to it); how many."""
        removed = 0
        for path in self.folder.glob("*.parquet"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed


def configured(setting: Setting, default_on: bool, identity: str, max_age: Any) -> ReadCache | None:
    """The cache a Workspace uses: None/True the default root (None only when `default_on`),
    a path that folder, False none. max_age: seconds or a timedelta."""
    if setting is False or (setting is None and not default_on):
        return None
    root = default_root() if setting is None or setting is True else Path(setting)
    return ReadCache(root, identity, seconds(max_age))


def seconds(max_age: Any) -> float | None:
    """A max_age as seconds: a number, a timedelta, or None (no limit)."""
    if max_age is None:
        return None
    if hasattr(max_age, "total_seconds"):
        return float(max_age.total_seconds())
    return float(max_age)
