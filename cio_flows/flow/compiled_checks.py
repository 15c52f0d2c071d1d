"""fastjsonschema's compiled validators, their code kept on disk between processes.

Why: fastjsonschema writes a validator's Python source from its schema, then compiles it: 40 ms
for the flow schema, 8 ms a step kind, paid by every `cio-flows` process before the first
row (a run, `validate`, `plan`). The compiled code is kept (marshal) under the user's cache
folder, named by what it depends on: the schema itself (its references are inside it, "#/..."),
fastjsonschema's version and the Python that compiled it. Loading it takes 0.2 ms. A cache
that cannot be read or written is only slower: the validator is compiled as before.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import marshal
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

import fastjsonschema
import orjson
from fastjsonschema.ref_resolver import RefResolver

CACHE_ENV = "CIO_FLOWS_CACHE_DIR"  # another folder for the cache (tests, read-only homes)


def compiled_check(schema: dict[str, Any]) -> Callable[[Any], Any]:
    """fastjsonschema.compile(schema): a function raising JsonSchemaException on invalid input.
    `schema` is not changed (the compiler resolves references in a copy of its own)."""
    try:
        path = _cache_folder() / f"{_key(schema)}.pyc"
    except TypeError:  # beyond JSON (a plug-in's schema holding a set, say): compiled here
        return fastjsonschema.compile(copy.deepcopy(schema))
    kept = _load(path)
    if kept is None:
        source = fastjsonschema.compile_to_code(copy.deepcopy(schema))
        # the root's function, named from the schema's $id as compile() finds it
        resolver = RefResolver.from_schema(copy.deepcopy(schema), handlers={}, store={})
        kept = (resolver.get_scope_name(), compile(source, "<fastjsonschema>", "exec"))
        _store(path, kept)
    name, code = kept
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # fastjsonschema's own generated code, as compile() runs it
    check: Callable[[Any], Any] = namespace[name]
    return check


def _key(schema: dict[str, Any]) -> str:
    digest = hashlib.sha256(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    digest.update(f"{fastjsonschema.VERSION}|{sys.implementation.cache_tag}".encode())
    digest.update(importlib.util.MAGIC_NUMBER)
    return digest.hexdigest()[:40]


def _cache_folder() -> Path:
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given) / "validators"
    import platformdirs  # only when the default is used

    return Path(platformdirs.user_cache_dir("cio-flows", appauthor=False)) / "validators"


Kept = tuple[str, CodeType]  # the root function's name, the module's code


def _load(path: Path) -> Kept | None:
    try:
        kept = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):  # none yet, unreadable, or damaged
        return None
    if (
        isinstance(kept, tuple)
        and len(kept) == 2
        and isinstance(kept[0], str)
        and isinstance(kept[1], CodeType)
    ):
        return kept
    return None


def _store(path: Path, kept: Kept) -> None:
    """Written whole or not at all (a file renamed into place): a reader never sees half."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(marshal.dumps(kept))
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


__all__ = ["CACHE_ENV", "compiled_check"]
