"""Slow and hostile clients against a real ``serve``: they are cut, real webhooks still get in.

Several hundred connections that send nothing, or a header a byte at a time, must neither keep a
signed webhook from a normal sender out nor hold their connection past the header deadline; a
SIGTERM while a client is mid-request never answers 500.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.support.bridge_procs import bridge_env, stripe_sale
from tests.support.serve import Serve, serve_process, wait_for
from tests.support.webhooks import stripe_header

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT = 3.0
SILENT = 250
DRIPPING = 250


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return bridge_env(f"sqlite:///{tmp_path}/bridge.db", "http://127.0.0.1:9", **extra)


def _port(serve: Serve) -> int:
    return int(serve.url.rsplit(":", 1)[1])


def _signed_request(serve: Serve, order: int) -> tuple[bytes, bytes]:
    hook = stripe_sale(order, f"cus_slow_{order}", 4_200)
    head = (
        f"POST /webhooks/stripe HTTP/1.1\r\nHost: {serve.url[7:]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(hook.body)}\r\n"
        f"Stripe-Signature: {stripe_header(hook.body)}\r\n\r\n"
    ).encode()
    return head, hook.body


async def _cut_after(port: int, drip: bytes | None, started: float) -> float:
    """Open a connection, send nothing (or ``drip`` a byte every 0.25 s); seconds until it's cut."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if drip is None:
            await asyncio.wait_for(reader.read(1), 30)
        else:
            for byte in drip:
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 0.25) == b"":
                        break
                except TimeoutError:
                    continue
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        writer.close()
    return time.monotonic() - started


async def _answers(serve: Serve, count: int) -> list[tuple[int, float]]:
    """A normal sender: ``count`` signed sales, one after the other; (status, seconds) each."""
    results = []
    async with httpx.AsyncClient(timeout=10) as client:
        for order in range(count):
            hook = stripe_sale(order, f"cus_normal_{order}", 9_900)
            sent = time.monotonic()
            response = await client.post(
                f"{serve.url}/webhooks/stripe",
                content=hook.body,
                headers={"Stripe-Signature": stripe_header(hook.body)},
            )
            results.append((response.status_code, time.monotonic() - sent))
            await asyncio.sleep(0.1)
    return results


async def _flood(serve: Serve) -> tuple[list[float], list[tuple[int, float]]]:
    port = _port(serve)
    started = time.monotonic()
    head, _ = _signed_request(serve, 0)
    slow = [asyncio.create_task(_cut_after(port, None, started)) for _ in range(SILENT)]
    slow += [asyncio.create_task(_cut_after(port, head, started)) for _ in range(DRIPPING)]
    await asyncio.sleep(0.5)  # all of them connected before the normal sender starts
    answers = await _answers(serve, 20)
    return await asyncio.gather(*slow), answers


def test_hundreds_of_slow_connections_are_cut_and_webhooks_still_answered(tmp_path: Path) -> None:
    env = _env(tmp_path, BRIDGE_HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT))
    with serve_process(env, tmp_path) as serve:
        wait_for(lambda: serve.readyz()[0] == 200, 30, "readyz")
        cut_after, answers = asyncio.run(_flood(serve))
        assert [status for status, _ in answers] == [200] * 20
        slowest = max(seconds for _, seconds in answers)
        assert slowest < 2.0, answers
        # Every slow connection was closed by the server at the header deadline, not before.
        assert len(cut_after) == SILENT + DRIPPING
        assert min(cut_after) >= HEADER_TIMEOUT - 0.5
        assert max(cut_after) < HEADER_TIMEOUT + 8.0
        assert len(serve.events("http.header_timeout")) == SILENT + DRIPPING


def test_connections_beyond_the_limit_get_503_until_the_idle_ones_are_cut(tmp_path: Path) -> None:
    env = _env(tmp_path, BRIDGE_HTTP_HEADER_TIMEOUT="2", BRIDGE_HTTP_MAX_CONNECTIONS="20")

    async def scenario(serve: Serve) -> tuple[int, int]:
        idle = [await asyncio.open_connection("127.0.0.1", _port(serve)) for _ in range(20)]
        async with httpx.AsyncClient(timeout=10) as client:
            refused = (await client.get(f"{serve.url}/healthz")).status_code
        await asyncio.sleep(3.5)  # the idle connections pass their header deadline
        async with httpx.AsyncClient(timeout=10) as client:
            served = (await client.get(f"{serve.url}/healthz")).status_code
        for _, writer in idle:
            writer.close()
        return refused, served

    with serve_process(env, tmp_path) as serve:
        wait_for(lambda: serve.readyz()[0] == 200, 30, "readyz")
        refused, served = asyncio.run(scenario(serve))
    assert refused == 503
    assert served == 200


def test_a_body_that_never_completes_gets_408(tmp_path: Path) -> None:
    env = _env(tmp_path, BRIDGE_HTTP_BODY_TIMEOUT="2")

    async def scenario(serve: Serve) -> tuple[bytes, float]:
        head, body = _signed_request(serve, 1)
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(serve))
        sent = time.monotonic()
        writer.write(head + body[:100])
        answer = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        return answer, time.monotonic() - sent

    with serve_process(env, tmp_path) as serve:
        wait_for(lambda: serve.readyz()[0] == 200, 30, "readyz")
        answer, took = asyncio.run(scenario(serve))
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"body not received within 2 s" in answer
    assert 1.5 < took < 10


async def _mid_request_at_sigterm(serve: Serve) -> tuple[bytes, bytes]:
    """Two clients mid-body when serve gets SIGTERM: one then finishes its body, one never does."""
    port = _port(serve)
    head_a, body_a = _signed_request(serve, 2)
    head_b, body_b = _signed_request(serve, 3)
    reader_a, writer_a = await asyncio.open_connection("127.0.0.1", port)
    reader_b, writer_b = await asyncio.open_connection("127.0.0.1", port)
    writer_a.write(head_a + body_a[:200])
    writer_b.write(head_b + body_b[:200])
    await asyncio.gather(writer_a.drain(), writer_b.drain())
    await asyncio.sleep(0.5)
    serve.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(1.0)
    writer_a.write(body_a[200:])  # the request in flight completes during the shutdown
    answer_a, answer_b = await asyncio.gather(
        asyncio.wait_for(reader_a.read(), 30), asyncio.wait_for(reader_b.read(), 30)
    )
    writer_a.close()
    writer_b.close()
    return answer_a, answer_b


def test_sigterm_with_clients_mid_request_never_answers_500(tmp_path: Path) -> None:
    env = _env(tmp_path, BRIDGE_HTTP_BODY_TIMEOUT="30", BRIDGE_HTTP_SHUTDOWN_TIMEOUT="3")
    with serve_process(env, tmp_path) as serve:
        wait_for(lambda: serve.readyz()[0] == 200, 30, "readyz")
        answer_a, answer_b = asyncio.run(_mid_request_at_sigterm(serve))
        assert serve.proc.wait(60) in (0, -signal.SIGTERM)
    assert answer_a.startswith(b"HTTP/1.1 200 "), answer_a
    assert b'"status":"stored"' in answer_a
    # Still sending its body when the grace period ended: told to retry, not a server error.
    assert answer_b.startswith(b"HTTP/1.1 503 "), answer_b
    assert b"shutting down" in answer_b
    assert b"500" not in answer_a.split(b"\r\n")[0] + answer_b.split(b"\r\n")[0]
