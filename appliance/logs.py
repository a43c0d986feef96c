"""Logging for the node: one JSON object per line on stderr, request ids included.

Secrets never reach a log call in the first place (tokens are not logged, keys
are not passed around as strings); this only decides the format and level.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["configure_logging"]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "route", "status", "duration_ms"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send the ``appliance`` loggers to stderr as JSON lines at ``level``."""
    root = logging.getLogger("appliance")
    root.setLevel(level)
    if not any(getattr(h, "_appliance", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JsonFormatter())
        handler._appliance = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
