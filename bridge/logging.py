"""structlog, configured once for the whole process.

JSON lines when stderr is not a terminal (production), a readable console otherwise. Logs from the
standard library (uvicorn, SQLAlchemy, httpx, alembic) go through the same processors. A redaction
step masks secrets, API keys, signatures and authorization headers wherever they appear in a
line's fields, so that a careless ``log.info(..., headers=...)`` can't leak them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
_SENSITIVE_KEY = re.compile(
    r"secret|password|passwd|api_key|apikey|token|authorization|signature|hmac|cookie|credential",
    re.IGNORECASE,
)
_SECRETS: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so that they are masked even inside free text."""
    _SECRETS.update(v for v in values if v and len(v) >= 6)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _SECRETS:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SENSITIVE_KEY.search(k) else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask sensitive keys and known secret values."""
    for key in list(event_dict):
        if _SENSITIVE_KEY.search(key) and key != "event":
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def _drop_color_message(_l: WrappedLogger, _n: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)  # uvicorn duplicates its message with ANSI colours
    return event_dict


def configure_logging(
    level: str = "INFO",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: Any = None,
) -> None:
    """Configure structlog and the standard library's logging. Safe to call again (tests)."""
    stream = stream if stream is not None else sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not getattr(stream, "isatty", lambda: False)())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        redact,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if as_json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy", "alembic"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    # Libraries at INFO are chatty: keep their warnings, not every query or request.
    for name in ("sqlalchemy.engine", "httpx", "httpcore", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _identity(_l: WrappedLogger, _n: str, event_dict: EventDict) -> EventDict:
    return event_dict


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def bound(**ids: Any) -> AbstractContextManager[None]:
    """Bind ids (event_id, command_id, …) to every line logged inside the ``with`` block."""
    return structlog.contextvars.bound_contextvars(**ids)
