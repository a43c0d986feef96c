"""Logging for the node: one JSON object per line on stderr, rendered by structlog.

Every record goes through the same renderer: the node's own loggers (plain ``logging.getLogger``
calls), gunicorn's (``appliance serve`` routes them here) and the libraries'. What is bound with
:func:`bind` / :func:`bound` (the request id, route and method during a request, the job id during a
job run) lives in contextvars, so every line logged while it is bound carries it, whichever logger
wrote it, without passing it around.

Secrets never reach a log call in the first place (tokens are not logged, keys are not passed around
as strings, the access line has the route template, not the path and query); as a last guard, anything
shaped like an API token is cut down to its key id before a line is written. Only the fields named in
:data:`FIELDS` are taken from a record's ``extra``, so a stray ``extra={"body": ...}`` stays out too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import IO, Any

import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, clear_contextvars, merge_contextvars
from structlog.stdlib import ExtraAdder, ProcessorFormatter

__all__ = ["FIELDS", "bind", "bound", "clear", "configure_logging"]

#: What a line may carry besides time, level, logger and event (from ``extra=`` or bound context).
FIELDS = (
    "request_id",
    "route",
    "method",
    "status",
    "duration_ms",
    "key_id",
    "job_id",
    "job_run",
    "trigger",
)
#: Leading keys, in this order, so a line reads the same way every time.
_ORDER = ("time", "level", "logger", "event", *FIELDS)
#: ``apl_<key id>_<secret>`` (see ``appliance.keys``): the id may be logged, the secret may not.
_TOKEN = re.compile(r"\b(apl_[0-9a-f]{8,32})_[A-Za-z0-9_-]{8,}")
_MARK = "_appliance_json"

EventDict = MutableMapping[str, Any]


def _redact(_logger: Any, _name: str, event: EventDict) -> EventDict:
    for key, value in event.items():
        if isinstance(value, str) and "apl_" in value:
            event[key] = _TOKEN.sub(r"\1_[redacted]", value)
    return event


def _ordered(_logger: Any, _name: str, event: EventDict) -> EventDict:
    out = {k: event.pop(k) for k in _ORDER if k in event}
    out.update(event)
    return out


def _shared() -> list[Any]:
    return [
        merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
    ]


def _formatter() -> ProcessorFormatter:
    return ProcessorFormatter(
        foreign_pre_chain=[*_shared(), ExtraAdder(allow=FIELDS)],
        processors=[
            ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact,
            _ordered,
            structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
        ],
    )


def configure_logging(level: str = "INFO", *, stream: IO[str] | None = None) -> None:
    """Send every logger (the node's, gunicorn's, libraries') to ``stream`` (stderr) as JSON lines.

    Idempotent: a second call replaces the handler of the first (a new level or stream) rather than
    adding another, so gunicorn's master and workers may each call it.
    """
    level = level.upper()
    threshold = logging.getLevelName(level)
    if not isinstance(threshold, int):
        raise ValueError(f"{level!r} is not a log level; use DEBUG, INFO, WARNING or ERROR")
    structlog.configure(
        processors=[*_shared(), ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_formatter())
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    # Libraries speak at WARNING and above unless the node is debugged: their INFO lines (alembic's
    # plugins, APScheduler's every run) would drown the node's own. gunicorn sets its loggers' level.
    root.setLevel(threshold if threshold <= logging.DEBUG else max(threshold, logging.WARNING))
    node = logging.getLogger("appliance")
    node.setLevel(level)
    node.propagate = True


def bind(**fields: Any) -> None:
    """Add ``fields`` to every line this thread (or task) logs until :func:`clear`."""
    bind_contextvars(**fields)


def clear() -> None:
    """Forget everything :func:`bind` added (a worker thread serves one request after another)."""
    clear_contextvars()


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to the lines logged inside the block; what was bound before is restored after."""
    with bound_contextvars(**fields):
        yield
