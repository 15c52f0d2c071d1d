"""`once: KEY_TEMPLATE`: a step done for a key is not done again, in any run using the journal.

The journal keeps the keys of steps that succeeded (`once_keys`). Before a step with `once`
runs, its rendered key is claimed: refused when the journal holds it, or when another row of
this run holds the claim (the same person twice in a file). A step that does not succeed gives
its claim back. `--ignore-once` claims every key (the step runs; its key is still recorded).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

THIS_RUN = "(this run)"


class OnceBook:
    """Claims of `once` keys; `done(key)` is the run that recorded the key, or None."""

    def __init__(self, done: Callable[[str], str | None], *, ignore: bool = False) -> None:
        self._done = done
        self._ignore = ignore
        self._claims: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, key: str) -> str | None:
        """None when this step may run for `key` (now claimed); else the run that did it."""
        if self._ignore:
            return None
        with self._lock:
            if key in self._claims:
                return THIS_RUN
            done_by = self._done(key)
            if done_by is not None:
                return done_by
            self._claims.add(key)
            return None

    def release(self, key: str) -> None:
        """The step claiming `key` did not succeed: another row may try it."""
        with self._lock:
            self._claims.discard(key)
