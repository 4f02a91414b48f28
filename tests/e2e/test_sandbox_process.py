"""``facturation-sandbox`` as a real process: the reference's curl examples, quota and faults
over real sockets."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest

from bridge.facturation.errors import RateLimitedError, RetryableError
from tests.support.sandbox import FIRM_ID, KEY, LOGIN, USER_AGENT, sandbox_process

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}


def test_starts_without_bridge_settings_and_answers_the_curl_examples() -> None:
    with sandbox_process() as sandbox:
        base = f"{sandbox.url}/firms/{FIRM_ID}"
        auth = (LOGIN, KEY)
        listed = httpx.get(
            f"{base}/customers.json", auth=auth, headers={"X-User-Agent": USER_AGENT}
        )
        assert listed.status_code == 200
        assert listed.json() == []
        assert listed.headers["X-Pagination"]
        assert listed.headers["X-RateLimit-Limit"] == "600"
        assert httpx.get(f"{base}/customers.json", auth=(LOGIN, "nope")).status_code == 401

        created = httpx.post(
            f"{base}/customers.json",
            auth=auth,
            headers=JSON,
            content=b'{"company_name":"WORLD INC"}',
        )
        assert created.status_code == 201
        customer = created.json()
        assert created.headers["Location"] == f"/firms/{FIRM_ID}/customers/{customer['id']}.json"
        patched = httpx.patch(
            f"{sandbox.url}{created.headers['Location']}",
            auth=auth,
            headers=JSON,
            content=b'{"company_name":"BIG CORP S.A.S"}',
        )
        assert patched.status_code == 200
        assert patched.json()["company_name"] == "BIG CORP S.A.S"
        no_type = httpx.post(f"{base}/customers.json", auth=auth, content=b'{"company_name":"X"}')
        assert no_type.status_code == 501

        invoice = httpx.post(
            f"{base}/invoices.json",
            auth=auth,
            headers=JSON,
            json={
                "customer_id": customer["id"],
                "items": [{"quantity": "1.0", "title": "Pub", "unit_price": "500", "vat": "0.200"}],
            },
        )
        assert invoice.status_code == 201
        assert invoice.json()["total_with_vat"] == "600.0"

        ledger = sandbox.ledger()
        assert [c["company_name"] for c in ledger["customers"]] == ["BIG CORP S.A.S"]
        counters = ledger["counters"]
        assert counters["requests"] == 6
        assert counters["by_status"] == {"200": 2, "201": 2, "401": 1, "501": 1}
        assert counters["user_agents"][USER_AGENT] == 4


def test_curl_itself_when_installed() -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed; the same requests are made with httpx above")
    with sandbox_process() as sandbox:
        base = f"{sandbox.url}/firms/{FIRM_ID}"
        out = subprocess.run(
            [
                curl,
                "-s",
                "-u",
                f"{LOGIN}:{KEY}",
                "-H",
                "Content-Type: application/json; charset=utf-8",
                "-X",
                "POST",
                "-d",
                '{"company_name":"A small company","individual":false}',
                "-w",
                "\n%{http_code}",
                f"{base}/customers.json",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        body, status = out.rsplit("\n", 1)
        assert status == "201"
        assert '"account_code":"411ASMALLCO"' in body
        listed = subprocess.run(
            [curl, "-s", "-u", f"{LOGIN}:{KEY}", f"{base}/customers.json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        assert '"company_name":"A small company"' in listed


def test_quota_and_faults_over_real_sockets() -> None:
    with (
        sandbox_process(
            "--rate-limit",
            "60",
            "--rate-window",
            "30",
            "--faults",
            "drop_after=0.5,slow_after=0.5",
            "--seed",
            "3",
            "--slow-seconds",
            "3",
        ) as sandbox,
        sandbox.client(timeout=1.0) as client,
    ):
        outcomes: list[str] = []
        reached: list[bool] = []
        for n in range(6):
            try:
                client.create_customer({"company_name": f"C{n}", "api_id": n + 1})
                outcomes.append("ok")
            except RetryableError as failure:
                reached.append(failure.may_have_reached_server)
                outcomes.append(str(failure).split(":")[1].strip())
        assert "ok" not in outcomes
        assert reached == [True] * 6
        assert any(o.startswith(("RemoteProtocolError", "ReadError")) for o in outcomes)
        assert "ReadTimeout" in outcomes
        # Every faulted write was stored: the api_id lookup finds each one.
        assert all(client.find_by_api_id("customers", n + 1) for n in range(6))
        counters = sandbox.ledger()["counters"]
        assert sum(counters["faults"].values()) == 6
        used = 12
        remaining = [client.find_customers().rate.remaining for _ in range(60 - used)]
        assert remaining[-1] == 0
        started = time.monotonic()
        with pytest.raises(RateLimitedError) as exc:
            client.find_customers()
        assert exc.value.retry_after is not None
        assert 0 < exc.value.retry_after <= 30
        assert time.monotonic() - started < 1
