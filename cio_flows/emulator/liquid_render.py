"""Templates rendered as Customer.io renders them: Liquid (python-liquid), per recipient.

The variables: `customer.*` (the person's attributes, with `id`, `email`, `cio_id` and
`created_at`), `trigger.*` (a transactional send's `message_data`, a broadcast trigger's `data`)
and `event.*` (the data of the event that started a campaign, with its `name`). A variable that
does not exist renders empty, as in Customer.io; a template that does not parse or fails while
rendering (a filter's error) makes the message `failed` with the reason as `failure_message`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from liquid import BoundTemplate, Environment
from liquid.exceptions import FilterArgumentError, LiquidError

from .store import Store


class _Bounded(Environment):
    """Templates come from workspace files and from send requests: a loop or a string that
    doubles itself fails the message instead of stalling the emulator."""

    loop_iteration_limit = 100_000
    local_namespace_limit = 1_000_000  # bytes held by {% assign %} / {% capture %}
    output_stream_limit = 2_000_000  # characters rendered

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        self.filters = {name: _range_capped(f) for name, f in self.filters.items()}


MAX_RANGE = _Bounded.loop_iteration_limit


def _range_capped(func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses a range longer than a loop may run: `(1..50000000) | join` would
    otherwise build the whole list (seconds and gigabytes) before any other limit sees it."""

    @functools.wraps(func)
    def capped(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            if isinstance(value, range) and len(value) > MAX_RANGE:
                raise FilterArgumentError(
                    f"a range of {len(value):,} items (at most {MAX_RANGE:,})", token=None
                )
        return func(*args, **kwargs)

    for flag in ("with_context", "with_environment"):  # how liquid calls the filter
        if getattr(func, flag, False):
            setattr(capped, flag, True)
    return capped


_ENV = _Bounded()


class RenderError(ValueError):
    """A Liquid template that failed; the message says where and why."""


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str | None
    sender: str | None
    failure: str | None = None  # set when a part did not render: the message fails


@functools.lru_cache(maxsize=512)
def _parse(source: str) -> BoundTemplate:
    return _ENV.from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    """One Liquid text rendered with `context`; RenderError on any Liquid error."""
    try:
        return _parse(source).render(**context)
    except LiquidError as exc:
        raise RenderError(" ".join(str(exc).split())) from None
    except (ArithmeticError, ValueError, TypeError) as exc:  # a filter's own error: `date` of 1e15
        raise RenderError(f"{type(exc).__name__}: {exc}") from None


def customer(store: Store, pk: int | None) -> dict[str, Any]:
    """`customer.*`: the attributes as sent (numbers stay numbers) plus the identifiers."""
    if pk is None:
        return {}
    person = store.person(pk)
    if person is None:
        return {}
    out: dict[str, Any] = {name: value for name, value, _text, _ts in store.attributes(pk)}
    out.update({k: person[k] for k in ("id", "email", "cio_id") if person[k] is not None})
    out.setdefault("created_at", person["created_at"])
    return out


def render_message(
    parts: dict[str, str | None],
    context: dict[str, Any],
) -> Rendered:
    """subject, body and from (each optional) rendered; the first error fails the message."""
    out: dict[str, str | None] = {}
    for name in ("subject", "body", "from"):
        source = parts.get(name)
        if source is None:
            out[name] = None
            continue
        try:
            out[name] = render(source, context)
        except RenderError as exc:
            failure = f"Liquid error in the {name}: {exc}"
            return Rendered(parts.get("subject"), parts.get("body"), parts.get("from"), failure)
    return Rendered(out["subject"], out["body"], out["from"])


def context_for(
    store: Store,
    pk: int | None,
    *,
    trigger: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"customer": customer(store, pk), "trigger": trigger or {}, "event": event or {}}


def render_send(
    store: Store, template: dict[str, Any] | None, request: dict[str, Any], pk: int | None
) -> Rendered:
    """A transactional send: the request's subject/body/from override the template's; all are
    rendered with `trigger.*` = its message_data."""
    parts: dict[str, str | None] = {}
    for name in ("subject", "body", "from"):
        given = request.get(name)
        parts[name] = given if isinstance(given, str) else (template or {}).get(name)
    data = request.get("message_data")
    return render_message(
        parts, context_for(store, pk, trigger=data if isinstance(data, dict) else None)
    )
