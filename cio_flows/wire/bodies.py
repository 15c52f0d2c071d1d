"""Reading an answer's body within the answer's deadline and a size limit.

A hostile or broken server can drip one byte every few seconds (each read is quick, so the read
timeout never trips), answer a gzip bomb, or send a chunked body that never ends. The body is
read in pieces (urllib3's read1 decodes gzip and deflate with a bounded output per piece), the
socket's timeout is what is left of the deadline, and reading stops once either is passed.
"""

from __future__ import annotations

import contextlib
import time

import requests
import urllib3.exceptions

PIECE = 64 * 1024


class AnswerTooLarge(Exception):
    """The decoded answer passed the size limit."""


class AnswerTooSlow(Exception):
    """The answer did not arrive whole before its deadline."""


def read_body(raw: requests.Response, deadline: float, limit: int) -> bytes:
    """The decoded body of a streamed answer, kept on `raw` (so .json() and .text work).

    Raises AnswerTooLarge, AnswerTooSlow, or the requests exception for a broken answer.
    """
    stream = raw.raw
    if not isinstance(stream, urllib3.BaseHTTPResponse):  # made in memory (a mock, a cassette)
        content = raw.content or b""
        if len(content) > limit:
            raise AnswerTooLarge
        return content
    body = bytearray()
    try:
        _read_pieces(stream, body, deadline, limit)
    except BaseException:
        raw.close()  # the rest is not wanted: the connection is not reused
        raise
    raw._content = bytes(body)  # what requests itself does once a body is read
    raw._content_consumed = True  # type: ignore[attr-defined]
    return raw._content


def _read_pieces(
    stream: urllib3.BaseHTTPResponse, body: bytearray, deadline: float, limit: int
) -> None:
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AnswerTooSlow
            _read_timeout(stream, remaining)
            piece = stream.read1(PIECE, decode_content=True)
            if not piece:
                break
            body += piece
            if len(body) > limit:
                raise AnswerTooLarge
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
        if time.monotonic() >= deadline:
            raise AnswerTooSlow from None
        raise requests.exceptions.ReadTimeout("read timed out") from None
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from None
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError, OSError) as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from None


def _read_timeout(stream: urllib3.BaseHTTPResponse, seconds: float) -> None:
    """The socket's read timeout for the next piece: what is left of the deadline."""
    connection = getattr(stream, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(0.001, seconds))
