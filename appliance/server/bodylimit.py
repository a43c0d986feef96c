"""Limits on request bodies beyond what werkzeug checks: chunked bodies, and JSON nesting depth.

Bodies sent without a length (``Transfer-Encoding: chunked``) are held to ``server.max_body_bytes`` too.

Werkzeug refuses a declared ``Content-Length`` over ``MAX_CONTENT_LENGTH`` with 413, but a chunked
body is only cut at the limit when read whole: the view would see the first ``max_body_bytes`` of
a larger body, and a prefix can be valid JSON. So such a body is read here, before the view, up to
one byte past the limit: over it the answer is 413 problem+json; within it the body is handed on as
if it had been sent with its length.

JSON nesting is bounded before the body is parsed: the standard library's decoder recurses once per
level, and a library that raises the interpreter's recursion limit (py_ecc does, to 100,000, when web3
loads it) turns a megabyte of ``[`` into a C stack overflow that kills the worker.
"""

from __future__ import annotations

import io
import itertools
import re

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

__all__ = ["MAX_JSON_DEPTH", "init_body_limit", "json_too_deep"]

#: Deepest nesting of arrays and objects a request body may have (real bodies need a handful).
MAX_JSON_DEPTH = 128
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _STEP)


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests arrays/objects deeper than ``limit`` (strings do not count).

    Linear and at C speed (a regex, ``bytes.translate``, ``itertools.accumulate``); bodies with fewer
    brackets than the limit are not scanned at all.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    skeleton = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_STEP.__getitem__, skeleton)), default=0) > limit


def _buffer_chunked_body() -> None:
    # Transfer-Encoding wins over any Content-Length (RFC 9112 6.3), so that is what is checked.
    if "chunked" not in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    limit: int = current_app.config["MAX_CONTENT_LENGTH"]
    stream = request.environ["wsgi.input"]
    parts, size = [], 0
    while size <= limit:
        part = stream.read(limit + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise RequestEntityTooLarge()
    body = b"".join(parts)
    request.environ["wsgi.input"] = io.BytesIO(body)
    request.environ["CONTENT_LENGTH"] = str(len(body))
    del request.environ["HTTP_TRANSFER_ENCODING"]
    for cached in ("stream", "content_length"):  # werkzeug's cached properties, if already read
        request.__dict__.pop(cached, None)


def init_body_limit(app: Flask) -> None:
    """Check chunked bodies against ``MAX_CONTENT_LENGTH`` before any view reads them."""
    app.before_request(_buffer_chunked_body)
