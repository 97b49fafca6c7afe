"""The operator's logs: one line per record, human-readable by default, JSON on request.

Both formats are kopf's (`kopf.configure`), so a line about a cloud names it the same way whether
stackops or kopf wrote it: `[namespace/name]` in text, an `object` field in JSON.

No credential is ever logged: the code logs names, never values. As a second line of defence,
every value the operator reads from a credentials Secret for its own use is masked in any line
that would carry it, exception texts included.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import kopf

FORMATS = ("text", "json")
MASK = "***"
MIN_MASKED_LENGTH = 8  # generated credentials are far longer; short strings would mask ordinary words


class Redactor(logging.Filter):
    """Masks remembered secret values in every record a handler writes."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()

    def remember(self, values: Iterable[str]) -> None:
        with self._lock:
            self._values = self._values | {v for v in values if len(v) >= MIN_MASKED_LENGTH}

    def mask(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._values:
            return True
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info:
            # formatted here so no formatter re-renders the unmasked exception later
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


REDACTOR = Redactor()


class QuietWatchHandlers(logging.Filter):
    """Drops kopf's "Handler '…' succeeded." for the handlers that watch every workload event: a line
    per DaemonSet status update of a thousand hypervisors says nothing (they log what they do)."""

    def __init__(self, handlers: Iterable[str]) -> None:
        super().__init__()
        self._lines = frozenset(f"Handler '{name}' succeeded." for name in handlers)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self._lines


WATCH_HANDLERS = ("workload_changed", "job_deleted")  # stackops.reconcile.handlers


def configure(log_format: str = "text", *, debug: bool = False) -> None:
    """Log to stderr in `log_format` (text or json) through kopf's formatters, masking secrets."""
    if log_format not in FORMATS:
        raise ValueError(f"--log-format: {log_format!r} is not one of {', '.join(FORMATS)}")
    kopf.configure(
        debug=debug,
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_prefix=log_format == "text",
    )
    quiet = QuietWatchHandlers(WATCH_HANDLERS)
    for handler in logging.getLogger().handlers:
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
            handler.addFilter(quiet)
