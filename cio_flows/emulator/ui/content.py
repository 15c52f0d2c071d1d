"""What a message says: its subject or title, its email body as HTML and as text, and the
fields the push, SMS, in-app and inbox previews show.

A message record holds the send request's body and what the emulator rendered from its
template with Liquid (`subject`, and the body as `content`); the rendered fields win.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

# Elements whose text is not shown to a reader, and those that end a line.
_HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})
_BLOCKS = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "hr"}
)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def request_body(d: dict[str, Any]) -> dict[str, Any]:
    body = d.get("body")
    return body if isinstance(body, dict) else {}


def title(d: dict[str, Any], template_name: str | None) -> str:
    """The line the inbox shows: the rendered subject, a push/in-app title, the start of an
    SMS or other text message, else the template's name."""
    body = request_body(d)
    for candidate in (d.get("subject"), body.get("subject"), body.get("title")):
        if _text(candidate):
            return str(candidate)
    message = _text(body.get("message")) or _text(body.get("body_plain"))
    if message is None and d.get("channel") != "email" and _text(d.get("content")):
        message = html_to_text(str(d["content"]))
    if message:
        return message if len(message) <= 80 else message[:79] + "…"
    return template_name or "(no subject)"


def email_html(d: dict[str, Any]) -> str | None:
    """The email's HTML body: rendered by the emulator when it renders, else as sent."""
    if _text(d.get("content")):
        return str(d["content"])
    body = request_body(d)
    return _text(body.get("body")) or _text(body.get("body_amp"))


def email_text(d: dict[str, Any]) -> str:
    """The text view: the plain body when one was given, else the HTML's readable text."""
    body = request_body(d)
    plain = _text(d.get("body_plain")) or _text(body.get("body_plain"))
    if plain:
        return plain
    html = email_html(d)
    return html_to_text(html) if html else ""


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.parts.append(f"[{href}] ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    lines = (line.strip() for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def preview(d: dict[str, Any], template_name: str | None) -> dict[str, Any]:
    """The fields a push, SMS, in-app or inbox preview shows (what the request or the rendered
    message carries; the template's name stands in for a missing title)."""
    body = request_body(d)
    heading = _text(d.get("subject")) or _text(body.get("title")) or template_name or ""
    text = _text(body.get("message"))
    if text is None and _text(d.get("content")):
        text = html_to_text(str(d["content"]))
    return {
        "title": heading,
        "message": text or "",
        "image_url": _text(body.get("image_url")),
        "link": _text(body.get("link")),
        "data": body.get("custom_data") if isinstance(body.get("custom_data"), dict) else None,
    }
