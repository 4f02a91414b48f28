"""A database that does not answer: which errors mean that, and how to say it in one line.

``DATABASE_DOWN`` are the SQLAlchemy errors raised when the server is down, refuses or drops the
connection, the pool times out, or SQLite stays locked past its busy timeout. They say nothing is
wrong with the request or the code: the same work succeeds once the database answers again. The
worker waits and retries, the admin API answers 503, and the commands print one line and exit
with :data:`EXIT_DATABASE`.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from bridge.config import Settings, mask_url

EXIT_DATABASE = 3  # the command could not reach its database (EXIT_CONFIG is 2)

DATABASE_DOWN: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,  # refused, dropped, server shutting down, SQLite locked
    sa_exc.InterfaceError,  # the driver lost its connection
    sa_exc.TimeoutError,  # no connection from the pool in time
)

_COMMAND_DOWN: tuple[type[Exception], ...] = (
    *DATABASE_DOWN,
    OSError,
)  # OSError: a SQLite file that can't be opened

Handler = Callable[[argparse.Namespace, Settings], int]


def reason(exc: BaseException) -> str:
    """The driver's own first line (``Connection refused``, ``database is locked``…)."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return text[0].strip() if text else type(cause).__name__


def describe(url: str, exc: BaseException) -> str:
    """``<masked url>: <reason>``, with the password scrubbed from the reason too."""
    why = reason(exc)
    try:
        password = make_url(url).password
    except (sa_exc.ArgumentError, ValueError):
        password = None
    if password:
        why = why.replace(str(password), "******")
    return f"{mask_url(url)}: {why}"


def database_command(handler: Handler) -> Handler:
    """Make a CLI handler print ``database unavailable: <masked url>: <reason>`` and return
    :data:`EXIT_DATABASE` when its database does not answer, instead of a traceback."""

    @functools.wraps(handler)
    def wrapper(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return handler(args, settings)
        except _COMMAND_DOWN as exc:
            print(f"database unavailable: {describe(settings.database_url, exc)}", file=sys.stderr)
            return EXIT_DATABASE

    return wrapper
