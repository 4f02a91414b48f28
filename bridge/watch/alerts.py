"""Alerts: tell an operator once when a condition starts, again if it lasts, and when it ends.

:func:`plan` is the pure decision: given the conditions that hold now and the memory of what was
already said (in ``bridge_state``), what to send. :class:`Watch` runs it every
``BRIDGE_ALERT_INTERVAL_SECONDS`` in one process at a time (a turn claimed in the database), sends
through a :class:`Notifier` outside any transaction, then remembers what it said. A notification
that fails to go out is not remembered, so it is tried again at the next turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from bridge.db.state import claim_turn, get_state, put_state
from bridge.logging import get_logger
from bridge.watch.conditions import (
    ENDPOINTS_KEY,
    Condition,
    WatchLimits,
    current_conditions,
)
from bridge.watch.endpoints import EndpointState

log = get_logger("bridge.watch.alerts")

SENT_KEY = "alerts.sent"
TURN_KEY = "alerts.turn"
ENDPOINTS_TURN_KEY = "webhook_endpoints.turn"


class Notifier(Protocol):
    def send(self, title: str, body: str, *, level: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Message:
    key: str
    title: str
    body: str
    level: str  # "failure" while it holds, "success" when it ended


@dataclass(frozen=True, slots=True)
class Plan:
    messages: list[Message]
    memory: dict[str, Any]  # what to remember once those are sent


def plan(
    conditions: Sequence[Condition],
    memory: dict[str, Any],
    now: datetime,
    repeat: timedelta,
) -> Plan:
    """New conditions are said; lasting ones again after ``repeat``; ended ones once, resolved."""
    sent: dict[str, str] = dict(memory.get("sent") or {})
    messages: list[Message] = []
    for c in conditions:
        last = sent.get(c.key)
        if last is None or now - datetime.fromisoformat(last) >= repeat:
            again = " (still)" if last is not None else ""
            messages.append(Message(c.key, c.title + again, c.detail, "failure"))
            sent[c.key] = now.isoformat()
    holding = {c.key for c in conditions}
    for key in [k for k in sent if k not in holding]:
        messages.append(
            Message(key, f"resolved: {key}", "This condition no longer holds.", "success")
        )
        del sent[key]
    return Plan(messages, {"sent": sent})


class AppriseNotifier:
    """Sends through apprise to every URL of ``BRIDGE_ALERT_URLS`` (Slack, e-mail, JSON webhook…)."""

    def __init__(self, urls: Sequence[str]) -> None:
        import apprise

        self._apprise = apprise.Apprise()
        for url in urls:
            if not self._apprise.add(url):
                raise ValueError("an alert URL is not understood by apprise")

    def send(self, title: str, body: str, *, level: str) -> bool:
        import apprise

        kinds = {"success": apprise.NotifyType.SUCCESS, "failure": apprise.NotifyType.FAILURE}
        ok = self._apprise.notify(
            title=f"facturation-bridge: {title}",
            body=body,
            notify_type=kinds.get(level, apprise.NotifyType.INFO),
        )
        return bool(ok)


class Watch:
    """One process's side of watching: :meth:`tick` is cheap when it is not this process's turn."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        notifier: Notifier | None,
        limits: WatchLimits,
        *,
        every_s: float,
        repeat: timedelta,
        clock: Callable[[], datetime],
        check_endpoints: Callable[[], dict[str, EndpointState]] | None = None,
        endpoints_every_s: float = 3600.0,
    ) -> None:
        self.sessions = sessions
        self.check_endpoints = check_endpoints
        self.endpoints_every_s = endpoints_every_s
        self.notifier = notifier
        self.limits = limits
        self.every_s = every_s
        self.repeat = repeat
        self.clock = clock
        self.next_at: datetime | None = None

    def tick(self) -> list[Message]:
        """Check and alert if the interval has passed and no other process took this turn."""
        now = self.clock()
        if self.next_at is not None and now < self.next_at:
            return []
        self.next_at = now + timedelta(seconds=self.every_s)
        if self.check_endpoints is not None and self.endpoints_every_s > 0:
            self._check_endpoints(now)
        with self.sessions.begin() as session:
            if not claim_turn(session, TURN_KEY, now, self.every_s * 0.9):
                return []
            return self.check(session, now)

    def _check_endpoints(self, now: datetime) -> None:
        """At start and every ``endpoints_every_s``, by one process: ask the providers."""
        assert self.check_endpoints is not None  # noqa: S101 -- checked by the caller
        with self.sessions.begin() as session:
            if not claim_turn(session, ENDPOINTS_TURN_KEY, now, self.endpoints_every_s):
                return
        try:  # the providers' APIs, outside any transaction
            results = self.check_endpoints()
        except Exception:  # a provider's outage must never stop the worker
            log.exception("webhook_endpoints.check_failed")
            return
        for result in results.values():
            level = log.info if result.ok else log.error
            level(
                "webhook_endpoints.checked",
                source=result.source,
                state=result.state,
                detail=result.detail,
            )
        record = {"at": now.isoformat(), "sources": {k: v.as_dict() for k, v in results.items()}}
        with self.sessions.begin() as session:
            put_state(session, ENDPOINTS_KEY, record, now)

    def check(self, session: Session, now: datetime) -> list[Message]:
        """One check now, in ``session``: what was sent."""
        memory = get_state(session, SENT_KEY) or {}
        since = memory.get("watching_since")
        watching_since = datetime.fromisoformat(since) if since else now
        conditions = current_conditions(session, now, self.limits, watching_since)
        decided = plan(conditions, memory, now, self.repeat)
        sent: list[Message] = []
        kept = dict(decided.memory["sent"])
        for message in decided.messages:
            if self._send(message):
                sent.append(message)
            elif message.level == "failure":  # not said: try again next turn
                previous = (memory.get("sent") or {}).get(message.key)
                if previous is None:
                    kept.pop(message.key, None)
                else:
                    kept[message.key] = previous
            else:
                kept[message.key] = (memory.get("sent") or {})[message.key]
        put_state(
            session, SENT_KEY, {"sent": kept, "watching_since": watching_since.isoformat()}, now
        )
        return sent

    def _send(self, message: Message) -> bool:
        if self.notifier is None:
            log.warning("alert.raised", key=message.key, title=message.title, level=message.level)
            return True  # logged is said, when no notifier is configured
        try:
            ok = self.notifier.send(message.title, message.body, level=message.level)
        except Exception:  # a notifier's failure must never stop the worker
            log.exception("alert.send_failed", key=message.key)
            return False
        if ok:
            log.warning("alert.sent", key=message.key, title=message.title, level=message.level)
        else:
            log.error("alert.send_failed", key=message.key, title=message.title)
        return ok
