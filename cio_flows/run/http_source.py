"""Rows from a paginated HTTP API (`for_each: {http: ...}`): an auth provider's users list.

    for_each:
      http:
        url: "{{ env.CLERK_API_URL }}/v1/users"
        headers: {Authorization: "Bearer {{ env.CLERK_SECRET_KEY }}"}
        params: {order_by: created_at}
        paginate: {style: offset, limit: 100}
        items: "{{ response }}"
      key: "{{ row.id }}"

Every page is read once, before anything is sent, into a JSON Lines spool file; the run then
reads its rows from there with the same checks as a data file (one object per row, unique keys),
so a bad page or a duplicate key stops the run before its first request, as a bad file does.

Pagination styles:
- `offset`: `offset` (param, default "offset") steps by `limit` (param "limit"); the last page
  is the first with fewer than `limit` items.
- `cursor`: `param` is set to the rendered `value` (`items`, `response`, `page` known) after
  each page; the last page is an empty one, or one whose cursor is empty or repeated.
- `next`: the next page's URL is the rendered `value` (absolute or relative to the last URL);
  the last page is the one without.
- none: one page.

Reads are paced (`rate` requests a second), retried on 429 and 5xx honouring Retry-After,
bounded (`max_pages`, a timeout and a size cap per page) and never follow a redirect. Keys in
headers are never printed: errors name the URL, whose query values are masked by the run's
redactor like any secret from the environment.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..errors import DataFileError, Location

if TYPE_CHECKING:  # requests loads when a source is read: `validate` reads none
    import requests

STYLES = ("offset", "cursor", "next")
DEFAULT_RATE = 5.0  # requests a second: gentle on an auth provider's API (Clerk allows 20)
DEFAULT_MAX_PAGES = 1000
DEFAULT_TIMEOUT = 30.0
MAX_PAGE_BYTES = 20 * 1024 * 1024
MAX_TRIES = 5
MAX_RETRY_WAIT = 60.0
RETRIED = frozenset({429, 500, 502, 503, 504})

Render = Callable[[Any, dict[str, Any]], Any]  # renders a spec value for a context


def _new_session() -> requests.Session:
    import requests

    return requests.Session()


@dataclass(frozen=True)
class PageRead:
    """One page request, as plan shows it: method, URL with its query (keys masked later)."""

    method: str
    url: str
    status: int


@dataclass
class HttpSource:
    """The spec of `for_each.http`, read into `spool` by `fetch()`."""

    spec: Mapping[str, Any]
    render: Render  # the flow's templating, for url, headers, params and paginate values
    location: Location
    pages: list[PageRead] = field(default_factory=list)
    session: requests.Session = field(default_factory=_new_session)
    sleep: Callable[[float], None] = time.sleep
    _last: float = 0.0

    @property
    def rate(self) -> float:
        return float(self.spec.get("rate", DEFAULT_RATE))

    @property
    def max_pages(self) -> int:
        return int(self.spec.get("max_pages", DEFAULT_MAX_PAGES))

    @property
    def timeout(self) -> float:
        return float(self.spec.get("timeout", DEFAULT_TIMEOUT))

    def fetch(self, spool: Path, context: dict[str, Any]) -> int:
        """Read every page into `spool` (one JSON object a line); how many rows."""
        count = 0
        with spool.open("w", encoding="utf-8") as out:
            for items in self._pages(context):
                for item in items:
                    out.write(json.dumps(item, ensure_ascii=False, allow_nan=False) + "\n")
                    count += 1
        return count

    def _pages(self, context: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        url = str(self.render(self.spec["url"], context))
        headers = {
            str(k): str(v)
            for k, v in (self.render(self.spec.get("headers") or {}, context)).items()
        }
        params = {
            str(k): _param(v)
            for k, v in (self.render(self.spec.get("params") or {}, context)).items()
        }
        paginate = dict(self.spec.get("paginate") or {})
        style = paginate.get("style")
        limit = int(paginate.get("limit", 100))
        if style == "offset":
            params[str(paginate.get("limit_param", "limit"))] = str(limit)
        offset_param = str(paginate.get("param", "offset"))
        offset = 0
        seen_cursors: set[str] = set()
        for page in range(1, self.max_pages + 1):
            if style == "offset":
                params[offset_param] = str(offset)
            body = self._get(url, headers, params, page)
            items = self._items(body, context, page)
            yield items
            if style == "offset":
                if len(items) < limit:
                    return
                offset += limit
                continue
            if style not in ("cursor", "next") or (not items and style == "cursor"):
                return
            page_context = {**context, "response": body, "items": items, "page": page}
            value = self.render(paginate.get("value", ""), page_context)
            cursor = "" if value is None else str(value)
            if not cursor or cursor in seen_cursors:
                return
            seen_cursors.add(cursor)
            if style == "cursor":
                params[str(paginate.get("param", "starting_after"))] = cursor
            else:
                url, params = self._same_origin(url, urljoin(url, cursor), page), {}
        raise self._error(
            f"the source has more than {self.max_pages} pages",
            expected=f"at most {self.max_pages} pages (for_each.http.max_pages)",
            found=f"page {self.max_pages} still had a next page",
        )

    def _items(self, body: Any, context: dict[str, Any], page: int) -> list[dict[str, Any]]:
        if "items" in self.spec:
            items = self.render(self.spec["items"], {**context, "response": body, "page": page})
        elif isinstance(body, list):
            items = body
        else:
            items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise self._error(
                f"page {page}: the rows are not a list",
                expected="a JSON array (the body, its `data`, or what for_each.http.items gives)",
                found=type(items).__name__,
            )
        for number, item in enumerate(items, 1):
            if not isinstance(item, dict):
                raise self._error(
                    f"page {page}, item {number}: a row must be a JSON object",
                    expected="an object",
                    found=type(item).__name__,
                )
        return items

    # --- one page ------------------------------------------------------------------------------

    def _get(self, url: str, headers: dict[str, str], params: dict[str, str], page: int) -> Any:
        import requests

        for attempt in range(1, MAX_TRIES + 1):
            self._pace()
            try:
                answer = self.session.get(
                    url,
                    headers=headers,
                    params=params,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                )
            except requests.RequestException as exc:
                if attempt == MAX_TRIES:
                    raise self._error(f"page {page}: {url}: {type(exc).__name__}") from None
                self.sleep(min(2.0**attempt, MAX_RETRY_WAIT))
                continue
            with answer:
                shown = answer.url or url
                if answer.status_code in RETRIED and attempt < MAX_TRIES:
                    wait = retry_after(answer.headers.get("Retry-After"), 2.0**attempt)
                    if wait is None:
                        raise self._error(
                            f"page {page}: {shown}: {answer.status_code} with a Retry-After too long to wait",
                            found=str(answer.headers.get("Retry-After"))[:40],
                        )
                    self.sleep(wait)
                    continue
                if 300 <= answer.status_code < 400:
                    raise self._error(
                        f"page {page}: {shown}: redirected ({answer.status_code}); redirects are not followed",
                        found=f"Location: {answer.headers.get('Location', '')[:200]}",
                    )
                if answer.status_code >= 300:
                    raise self._error(
                        f"page {page}: {shown}: HTTP {answer.status_code}",
                        expected="a 2xx answer",
                        found=_snippet(answer),
                    )
                deadline = time.monotonic() + self.timeout
                body = _json_body(answer, self._error, page, shown, deadline)
                self.pages.append(PageRead("GET", shown, answer.status_code))
                return body
        raise AssertionError("unreachable")  # the loop returns or raises

    def _same_origin(self, url: str, following: str, page: int) -> str:
        """The next page's URL, when it is on the source's own scheme, host and port: the
        source's headers (its key) must never go where a page's body points."""
        if _origin(following) != _origin(url):
            raise self._error(
                f"page {page}: the next page is on another server; its headers are not sent there",
                expected=f"a next page on {_origin(url)}",
                found=f"{_origin(following)}",
            )
        return following

    def _pace(self) -> None:
        if self.rate <= 0:
            return
        gap = 1.0 / self.rate
        wait = self._last + gap - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        self._last = time.monotonic()

    def _error(
        self, reason: str, *, expected: str | None = None, found: str | None = None
    ) -> DataFileError:
        return DataFileError(reason, location=self.location, expected=expected, found=found)


def retry_after(value: str | None, default: float) -> float | None:
    """Seconds to wait: the header's (seconds or an HTTP date), else `default`; None when
    longer than MAX_RETRY_WAIT (or unreadable as a finite number)."""
    if value is None:
        return min(default, MAX_RETRY_WAIT)
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return min(default, MAX_RETRY_WAIT)
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds) or seconds > MAX_RETRY_WAIT:
        return None
    return max(seconds, 0.0)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _snippet(answer: requests.Response) -> str:
    import requests

    try:
        text = next(answer.iter_content(300), b"").decode("utf-8", "replace")
    except requests.RequestException:
        return "an unreadable body"
    printable = "".join(c if c.isprintable() else " " for c in text).strip()
    return printable[:200] or "an empty body"


def _json_body(
    answer: requests.Response,
    error: Callable[..., DataFileError],
    page: int,
    url: str,
    deadline: float,
) -> Any:
    """The page's JSON, read within the page's timeout and a size cap (a server that drips or
    never ends cannot hold the run or fill memory); JSON without NaN or nesting past the
    decoder's stack."""
    import requests

    from ..wire.bodies import AnswerTooLarge, AnswerTooSlow, read_body

    try:
        data = read_body(answer, deadline, MAX_PAGE_BYTES)
    except AnswerTooLarge:
        raise error(
            f"page {page}: {url}: the answer is larger than {MAX_PAGE_BYTES // 2**20} MB"
        ) from None
    except AnswerTooSlow:
        raise error(f"page {page}: {url}: the answer did not arrive within the timeout") from None
    except requests.RequestException as exc:
        raise error(f"page {page}: {url}: the answer broke off ({type(exc).__name__})") from None
    try:
        return json.loads(data, parse_constant=_not_a_number)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deep" if isinstance(exc, RecursionError) else "not JSON"
        raise error(
            f"page {page}: {url}: the answer is {reason}",
            expected="a JSON body (no NaN or Infinity)",
            found=_printable(data[:200]),
        ) from None


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()


def _printable(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    return "".join(c if c.isprintable() else " " for c in text).strip() or "an empty body"
