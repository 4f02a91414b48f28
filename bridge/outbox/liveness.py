"""Worker heartbeats: a crashed worker's claims are released in seconds, not when its lease runs out.

Each worker process keeps its row in ``workers`` (id, host, pid, started and last heartbeat times)
fresh every ``BRIDGE_HEARTBEAT_SECONDS``, from a thread of its own, so that a long API call never
silences it. At each beat it also releases, in one statement, the claims of every worker silent for
longer than ``BRIDGE_WORKER_DEAD_AFTER``: back to ``pending``, lease cleared, ``outcome_unknown``
kept, so the next claim looks the object up by ``api_id`` before sending anything again.

When a released command is due again:

- not marked ``outcome_unknown``: nothing it sent can have created anything, so at once;
- marked ``outcome_unknown``: a create may have left, and the lookup proves it absent only once the
  request has finished on the server. A worker *presumed* dead (silent: maybe a frozen VM, or a
  database it can no longer reach) may still be in that call, so its command waits the longest one
  call can take, ``4 x FACTURATION_TIMEOUT`` — the bound the shortest allowed lease gives. A worker
  *known* dead (same host, its process gone) sent nothing since it died: its command waits the
  settle the retry policy uses after any uncertain failure, ``2 x FACTURATION_TIMEOUT``.

The lease (``BRIDGE_LEASE_SECONDS``) stays the upper bound for a live worker stuck in a call (its
heartbeat goes on); ``lease_token`` still fences every write, so a worker released by mistake can
record nothing once its command is back to pending or claimed again.

On start, a worker takes back the claims left under its own id (an explicit ``--worker-id`` reused
by a restarted process). On SQLite — where a worker is the only one of its database — it also takes
back at once every claim of a worker that is not provably alive (same host, process running,
heartbeat fresh), so a restarted ``serve``, whose default id ``host:pid`` is new, does not wait.

Times come from the workers' clocks, like leases: hosts must keep their clocks synchronised (NTP).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, case, delete, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bridge.config import LEASE_PER_TIMEOUT, Settings
from bridge.db.models import CommandStatus, OutboxCommand, UTCDateTime, WorkerRecord, utcnow
from bridge.logging import get_logger

log = get_logger("bridge.outbox.liveness")

Clock = Callable[[], datetime]
_OC: Table = OutboxCommand.__table__  # type: ignore[assignment]  # a declarative class's table is a Table
_W: Table = WorkerRecord.__table__  # type: ignore[assignment]  # same
_IN_FLIGHT = CommandStatus.IN_FLIGHT.value
PRUNE_AFTER = timedelta(days=1)  # rows of workers silent this long (and holding nothing) go


@dataclass(frozen=True, slots=True)
class Liveness:
    """How often a worker beats, when silence means dead, how long an uncertain create settles."""

    every: float
    dead_after: float
    settle_presumed: float  # a worker presumed dead may still be in its call
    settle_known: float  # a worker whose process is gone

    @classmethod
    def from_settings(cls, settings: Settings) -> Liveness:
        return cls(
            every=settings.heartbeat_seconds,
            dead_after=settings.worker_dead_after,
            settle_presumed=LEASE_PER_TIMEOUT * settings.api_timeout,
            settle_known=2 * settings.api_timeout,
        )


def _process_gone(host: str, pid: int) -> bool:
    """True only when ``pid`` ran on this host and is no longer running."""
    if host != socket.gethostname() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: existence check, nothing is sent
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: it exists
        return False
    return False


def release(
    session: Session, holders: Any, now: datetime, *, settle_s: float, reason: str
) -> list[tuple[int, str]]:
    """Put the in-flight commands whose ``leased_by`` matches ``holders`` (a SQL condition on
    ``outbox_commands.leased_by``) back to pending, in one statement. Returns (id, holder) pairs."""
    settled = literal(now + timedelta(seconds=settle_s), UTCDateTime())
    rows = session.execute(
        update(_OC)
        .where(_OC.c.status == _IN_FLIGHT, holders)
        .values(
            status=CommandStatus.PENDING.value,
            lease_expires_at=None,
            next_attempt_at=case(
                (_OC.c.outcome_unknown, settled), else_=literal(now, UTCDateTime())
            ),
            last_error=reason[:2000],
            updated_at=now,
        )
        .returning(_OC.c.id, _OC.c.leased_by)
    ).all()
    return [(int(r.id), str(r.leased_by)) for r in rows]


def _logged(released: list[tuple[int, str]], by: str, why: str) -> int:
    holders = sorted({holder for _, holder in released})
    if released:
        log.warning(
            "worker.claims_released",
            by=by,
            dead_workers=holders,
            commands=len(released),
            why=why,
        )
    return len(released)


class Heartbeat:
    """One worker's heartbeat thread. :meth:`start` before the first claim, :meth:`stop` at the end."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        worker_id: str,
        liveness: Liveness,
        *,
        sole_worker: bool,
        clock: Clock = utcnow,
    ) -> None:
        self.sessions = sessions
        self.worker_id = worker_id
        self.liveness = liveness
        self.sole_worker = sole_worker
        self.clock = clock
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = clock()
        self._taken_back = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Beat once now (taking back a dead predecessor's claims), then every ``every`` seconds."""
        self._beat_or_log()
        self._thread = threading.Thread(target=self._loop, name="bridge-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; forget this worker's row unless it still holds a claim."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        try:
            with self.sessions.begin() as session:
                session.execute(
                    delete(_W).where(
                        _W.c.worker_id == self.worker_id,
                        ~exists().where(
                            _OC.c.status == _IN_FLIGHT, _OC.c.leased_by == self.worker_id
                        ),
                    )
                )
        except Exception as exc:  # stopping must not fail on a database outage: the row goes stale
            log.warning("worker.heartbeat_failed", worker_id=self.worker_id, error=_first_line(exc))

    def beat(self) -> int:
        """One heartbeat and one sweep, in one transaction. Returns the commands released."""
        now = self.clock()
        released = 0
        with self.sessions.begin() as session:
            if not self._taken_back:
                released += self._take_back(session, now)
            self._upsert(session, now)
            cutoff = now - timedelta(seconds=self.liveness.dead_after)
            silent = select(_W.c.worker_id).where(
                _W.c.heartbeat_at < cutoff, _W.c.worker_id != self.worker_id
            )
            released += _logged(
                release(
                    session,
                    _OC.c.leased_by.in_(silent),
                    now,
                    settle_s=self.liveness.settle_presumed,
                    reason=f"released: its worker was silent for over {self.liveness.dead_after:g} s",
                ),
                self.worker_id,
                "silent",
            )
        self._taken_back = True
        return released

    # -- internals --------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(self.liveness.every):
            self._beat_or_log()

    def _beat_or_log(self) -> None:
        try:
            self.beat()
        except Exception as exc:  # a database outage: the worker's own loop reports it too
            log.warning("worker.heartbeat_failed", worker_id=self.worker_id, error=_first_line(exc))

    def _upsert(self, session: Session, now: datetime) -> None:
        dialect = session.get_bind().dialect.name
        ins: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = ins(_W).values(
            worker_id=self.worker_id,
            host=self.host,
            pid=self.pid,
            started_at=self.started_at,
            heartbeat_at=now,
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["worker_id"],
                set_={
                    "host": self.host,
                    "pid": self.pid,
                    "started_at": self.started_at,
                    "heartbeat_at": now,
                },
            )
        )

    def _take_back(self, session: Session, now: datetime) -> int:
        """At start: the claims of predecessors that can't be running any more (module docstring)."""
        fresh = now - timedelta(seconds=self.liveness.dead_after)
        known: list[str] = []  # their process is gone
        presumed: list[str] = [self.worker_id]  # a process of the same id can't be running
        for r in session.execute(select(_W)).all():
            gone = _process_gone(r.host, r.pid)
            if r.worker_id == self.worker_id:
                if gone:
                    presumed.remove(self.worker_id)
                    known.append(r.worker_id)
            elif self.sole_worker and gone:
                known.append(r.worker_id)
            elif self.sole_worker and r.host == self.host and r.heartbeat_at >= fresh:
                log.warning(
                    "worker.another_worker_on_sqlite",
                    worker_id=self.worker_id,
                    other=r.worker_id,
                    hint="SQLite supports one worker process; use PostgreSQL for more",
                )
        released = 0
        if known:
            released += _logged(
                release(
                    session,
                    _OC.c.leased_by.in_(known),
                    now,
                    settle_s=self.liveness.settle_known,
                    reason="released at a worker's start: the worker that held it is gone",
                ),
                self.worker_id,
                "process_gone",
            )
        holders: Any = _OC.c.leased_by.in_(presumed)
        if self.sole_worker:  # claims from before heartbeats existed have no worker row
            holders = holders | ~exists().where(_W.c.worker_id == _OC.c.leased_by)
        released += _logged(
            release(
                session,
                holders,
                now,
                settle_s=self.liveness.settle_presumed,
                reason="released at a worker's start: the worker that held it had stopped",
            ),
            self.worker_id,
            "restarted",
        )
        prune(session, now)
        return released


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def workers_status(session: Session, now: datetime, dead_after: float) -> dict[str, Any]:
    """Workers alive and dead (last heartbeat, age) and the claims held by workers not alive."""
    cutoff = now - timedelta(seconds=dead_after)
    rows = session.execute(select(_W).order_by(_W.c.heartbeat_at.desc()).limit(100)).all()
    waiting = session.execute(
        select(func.count())
        .select_from(_OC)
        .where(
            _OC.c.status == _IN_FLIGHT,
            ~exists().where(_W.c.worker_id == _OC.c.leased_by, _W.c.heartbeat_at >= cutoff),
        )
    ).scalar_one()

    def describe(r: Any) -> dict[str, Any]:
        return {
            "worker_id": r.worker_id,
            "host": r.host,
            "pid": r.pid,
            "started_at": r.started_at.isoformat(),
            "heartbeat_at": r.heartbeat_at.isoformat(),
            "heartbeat_age_s": round((now - r.heartbeat_at).total_seconds(), 3),
        }

    return {
        "alive": [describe(r) for r in rows if r.heartbeat_at >= cutoff],
        "dead": [describe(r) for r in rows if r.heartbeat_at < cutoff],
        "commands_waiting_on_dead_worker": int(waiting),
    }


def prune(session: Session, now: datetime) -> int:
    """Forget workers silent for over a day that hold nothing (called at a worker's start)."""
    result = session.execute(
        delete(_W).where(
            _W.c.heartbeat_at < now - PRUNE_AFTER,
            ~exists().where(_OC.c.status == _IN_FLIGHT, _OC.c.leased_by == _W.c.worker_id),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
