"""The bridge as real processes (``web`` + ``worker``s) and signed Stripe traffic, for e2e and bench.

Sales and refunds are built from the fixtures' real Stripe events (``invoice.paid``,
``charge.refunded``) with fresh ids, customers and amounts, and signed with Stripe's library; a
sale is a French consumer's, VAT 20 % included in its amount.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.procs import free_port, wait_http
from tests.support.sandbox import FIRM_ID, KEY, LOGIN, USER_AGENT, SandboxProcess, sandbox_process
from tests.support.stripe_shapes import french_vat_included
from tests.support.webhooks import (
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    fixture_bytes,
    shopify_headers,
    stripe_header,
)


@dataclass(frozen=True)
class Webhook:
    event_id: str
    body: bytes
    shopify_topic: str | None = None  # a Shopify delivery of this topic; None: a Stripe event


def stripe_sale(order: int, customer: str, cents: int, currency: str = "eur") -> Webhook:
    """A paid Stripe invoice for ``order`` from the fixture: one line of ``cents`` (EUR by default)
    paid by a French consumer, VAT 20 % included (:func:`french_vat_included`)."""
    event = json.loads(fixture_bytes("stripe/event_invoice.paid.json"))
    event["id"] = f"evt_sale_{order:05d}"
    invoice = event["data"]["object"]
    invoice.update(
        id=f"in_chaos_{order:05d}",
        number=f"CHAOS-{order:05d}",
        customer=customer,
        customer_name=f"Client {customer}",
        customer_email=f"{customer}@example.com",
        currency=currency,
        total=cents,
        subtotal=cents,
        amount_due=cents,
        amount_paid=cents,
        charge=f"ch_chaos_{order:05d}",
    )
    line = invoice["lines"]["data"][0]
    line.update(amount=cents, currency=currency, description=f"Order {order}")
    event["data"]["object"] = french_vat_included(invoice)
    return Webhook(event["id"], json.dumps(event).encode())


def stripe_refund(order: int, cents: int) -> Webhook:
    """A full refund of ``order``'s charge, linked to its invoice."""
    event = json.loads(fixture_bytes("stripe/event_charge.refunded.json"))
    event["id"] = f"evt_refund_{order:05d}"
    charge = event["data"]["object"]
    charge.update(
        id=f"ch_chaos_{order:05d}",
        invoice=f"in_chaos_{order:05d}",
        amount=cents,
        amount_captured=cents,
        amount_refunded=cents,
        currency="eur",
        refunded=True,
    )
    charge["refunds"]["data"][0].update(
        id=f"re_chaos_{order:05d}", amount=cents, charge=charge["id"], currency="eur"
    )
    return Webhook(event["id"], json.dumps(event).encode())


def invoice_custom(order: int) -> str:
    return f"stripe:invoice:in_chaos_{order:05d}"


def refund_custom(order: int) -> str:
    return f"stripe:refund:re_chaos_{order:05d}"


def bridge_env(db_url: str, api_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BRIDGE_", "FACTURATION_", "STRIPE_", "SHOPIFY_"))
    }
    env.update(
        BRIDGE_DATABASE_URL=db_url,
        FACTURATION_API_URL=api_url,
        FACTURATION_API_LOGIN=LOGIN,
        FACTURATION_API_KEY=KEY,
        FACTURATION_FIRM_ID=str(FIRM_ID),
        FACTURATION_USER_AGENT=USER_AGENT,
        STRIPE_WEBHOOK_SECRETS=STRIPE_SECRET,
        SHOPIFY_WEBHOOK_SECRETS=SHOPIFY_SECRET,
        BRIDGE_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


@dataclass
class Bridge:
    """A ``web`` process and ``workers`` worker processes sharing one database; or, with
    ``serve``, one ``serve`` process (web and worker) that :meth:`kill_worker` kills as a whole."""

    env: Mapping[str, str]
    logs: Path
    workers: int = 1
    serve: bool = False
    url: str = ""
    port: int = 0
    web: subprocess.Popen[bytes] | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    generation: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _spawn(self, *argv: str, log: str) -> subprocess.Popen[bytes]:
        with (self.logs / log).open("ab") as out:  # the child keeps its own copy of the fd
            return subprocess.Popen(
                [sys.executable, "-m", "bridge", *argv],
                env=dict(self.env),
                stdout=subprocess.DEVNULL,
                stderr=out,
                cwd=self.logs,
            )

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        migrate = self._spawn("migrate", log="migrate.log")
        assert migrate.wait(60) == 0, (self.logs / "migrate.log").read_text()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if self.serve:
            self.start_worker(0)
        else:
            self.web = self._spawn("web", "--port", str(self.port), log="web.log")
        wait_http(f"{self.url}/readyz", timeout=30)
        for slot in range(0 if self.serve else self.workers):
            self.start_worker(slot)

    def start_worker(self, slot: int) -> None:
        """A new worker process in ``slot`` (with ``serve``: ``serve`` again, default worker id)."""
        with self._lock:
            self.generation += 1
            if self.serve:
                argv: tuple[str, ...] = ("serve", "--port", str(self.port))
            else:
                argv = ("worker", "--worker-id", f"worker-{slot}-{self.generation}")
            self.procs[str(slot)] = self._spawn(*argv, log=f"worker-{slot}.log")

    def kill_worker(self, slot: int) -> None:
        """SIGKILL, as a crash or an OOM kill would: nothing in the process gets to run."""
        with self._lock:
            proc = self.procs[str(slot)]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def stop(self) -> None:
        for proc in [*self.procs.values(), *([self.web] if self.web else [])]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.procs.values(), *([self.web] if self.web else [])]:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def sandbox_to_file(log: Path, *options: str) -> contextlib.AbstractContextManager[SandboxProcess]:
    """``python -m facturation_sandbox`` on a free port, its log in ``log``."""
    return sandbox_process(*options, log=log)


@contextlib.contextmanager
def running_bridge(
    env: Mapping[str, str], logs: Path, workers: int, *, serve: bool = False
) -> Iterator[Bridge]:
    bridge = Bridge(env=env, logs=logs, workers=workers, serve=serve)
    try:
        bridge.start()
        yield bridge
    finally:
        bridge.stop()


def post_all(url: str, hooks: list[Webhook], *, threads: int = 4) -> dict[str, Any]:
    """Deliver every webhook as Stripe does: signed, retried until a 2xx. Returns send stats."""
    queue = list(reversed(hooks))
    lock = threading.Lock()
    stats = {"sent": 0, "retries": 0, "non_2xx": {}}
    first_ok: dict[str, float] = {}

    def sender() -> None:
        with httpx.Client(timeout=10) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    hook = queue.pop()
                while True:
                    try:
                        response = client.post(
                            f"{url}/webhooks/{'shopify' if hook.shopify_topic else 'stripe'}",
                            content=hook.body,
                            headers=_headers(hook),
                        )
                        ok = 200 <= response.status_code < 300
                        code = str(response.status_code)
                    except httpx.TransportError as exc:
                        ok, code = False, type(exc).__name__
                    with lock:
                        if ok:
                            stats["sent"] += 1
                            first_ok.setdefault(hook.event_id, time.monotonic())
                        else:
                            stats["retries"] += 1
                            stats["non_2xx"][code] = stats["non_2xx"].get(code, 0) + 1  # type: ignore[index, attr-defined]
                    if ok:
                        break
                    time.sleep(0.2)

    pool = [threading.Thread(target=sender, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    stats["accepted_at"] = first_ok
    return stats


def _headers(hook: Webhook) -> dict[str, str]:
    if hook.shopify_topic is not None:
        return shopify_headers(hook.body, hook.shopify_topic, hook.event_id)
    return {"Stripe-Signature": stripe_header(hook.body), "Content-Type": "application/json"}


def traffic(
    sales: int, refunds: int, *, duplicates: float, customers: int, seed: int
) -> tuple[list[Webhook], dict[int, int], list[int]]:
    """Shuffled sales and refunds with a share of duplicate deliveries; amounts by order; refunded orders."""
    rng = random.Random(seed)
    amounts = {order: rng.randint(100, 250_000) for order in range(sales)}
    hooks = [stripe_sale(o, f"cus_chaos_{o % customers:04d}", amounts[o]) for o in range(sales)]
    refunded = rng.sample(range(sales), refunds)
    hooks += [stripe_refund(o, amounts[o]) for o in refunded]
    hooks += rng.sample(hooks, int(len(hooks) * duplicates))
    rng.shuffle(hooks)
    return hooks, amounts, refunded
