"""Send a correctly signed test webhook to a running bridge, to watch an invoice appear.

    .venv/bin/python scripts/send_test_webhook.py shopify       # a French order, prices incl. VAT
    .venv/bin/python scripts/send_test_webhook.py stripe        # a subscription renewal, 39.00 EUR
    .venv/bin/python scripts/send_test_webhook.py shopify --new # the same order under a fresh id

Signs with the first secret of SHOPIFY_WEBHOOK_SECRETS / STRIPE_WEBHOOK_SECRETS (the demo secrets of
scripts/serve.sh by default). Sending the same delivery twice shows the deduplication: the second is
acknowledged and changes nothing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from pathlib import Path

import httpx

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "authored"


def _first(variable: str, default: str) -> str:
    return (os.environ.get(variable) or default).split(",")[0].strip()


def shopify(url: str, new: bool) -> httpx.Response:
    order = json.loads((FIXTURES / "shopify_orders_paid_fr_taxes_included.json").read_text())
    event_id = "demo-event-1"
    if new:
        order["id"] = 10**18 + secrets.randbelow(8 * 10**18)
        order["name"] = f"#{2000 + secrets.randbelow(8000)}"
        event_id = str(uuid.uuid4())
    body = json.dumps(order).encode()
    secret = _first("SHOPIFY_WEBHOOK_SECRETS", "shopify_demo_secret")
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Shop-Domain": "demo-boutique.myshopify.com",
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": event_id,
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": "2026-05-06T14:48:13Z",
    }
    return httpx.post(f"{url}/webhooks/shopify", content=body, headers=headers, timeout=10)


def stripe(url: str, new: bool) -> httpx.Response:
    event = json.loads((FIXTURES / "stripe_invoice.paid_renewal_taxes_included.json").read_text())
    if new:
        suffix = uuid.uuid4().hex[:16]
        event["id"] = f"evt_demo{suffix}"
        event["data"]["object"]["id"] = f"in_demo{suffix}"
    body = json.dumps(event).encode()
    secret = _first("STRIPE_WEBHOOK_SECRETS", "whsec_demo")
    timestamp = int(time.time())
    signed = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={signed}"}
    return httpx.post(f"{url}/webhooks/stripe", content=body, headers=headers, timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", choices=["shopify", "stripe"])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the bridge")
    parser.add_argument("--new", action="store_true", help="a fresh sale instead of the fixture's")
    args = parser.parse_args()
    response = (shopify if args.source == "shopify" else stripe)(args.url, args.new)
    print(response.status_code, response.text)


if __name__ == "__main__":
    main()
