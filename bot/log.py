"""Logging set-up with secrets redacted.

Why a filter and not just care: httpx logs every request URL at INFO, and Bot API URLs contain the bot
token (`/bot<token>/sendMessage`). Libraries we do not control may log exception texts holding URLs too.
So the httpx loggers go to WARNING *and* every record passes through a filter that masks the configured
secrets wherever they appear, including in arguments and exception text.

`LOG_FORMAT=json` writes one JSON object per line for log collectors: time, level, logger, message, the
exception if any, and the correlation fields a caller passed with `extra=` (task, user, chat, upstream
request id...). The filter runs before either formatter, and the JSON formatter masks the extra fields
too, so both formats are redacted alike.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

_TOKEN_SHAPE = re.compile(r"\d{6,12}:[A-Za-z0-9_-]{30,}")
MASK = "***"


class RedactingFilter(logging.Filter):
    """Replaces known secret values (and anything shaped like a bot token) in the rendered message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _TOKEN_SHAPE.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


#: Correlation fields copied from `extra=` into JSON lines when a record has them.
CONTEXT_FIELDS = (
    "task_id", "user_id", "chat_id", "request_id", "upstream_task_id", "action", "attempt", "code",
    "status", "latency", "retry_in", "error", "update_id",
)  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values of the context fields are redacted like the message."""

    def __init__(self, redactor: RedactingFilter) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None or value == "":
                continue
            if isinstance(value, bool | int | float):
                data[name] = value
            else:
                data[name] = self._redactor.redact(str(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self._redactor.redact(self.formatException(record.exc_info))
        if record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, ensure_ascii=False)


def setup_logging(level: str = "INFO", secrets: Iterable[str] = (), fmt: str = "text") -> RedactingFilter:
    """Configure the root logger once; returns the filter so tests can check what it masks."""
    redactor = RedactingFilter(secrets)
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter(redactor))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redactor
