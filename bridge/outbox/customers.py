"""Before creating a customer: the Facturation.pro customer with the same e-mail, if there is one.

A merchant often has customers in Facturation.pro already, and one person may buy on Stripe and on
Shopify. ``GET customers.json?email=`` is a *partial* match (per the API's documentation), so the
answer is filtered here: exactly the same address, letter case aside. When one customer (or several:
the oldest, lowest id) has it, ``customer.ensure`` binds the source customer to it instead of
creating another (``BRIDGE_CUSTOMER_LOOKUP_BY_EMAIL``, on by default). The first page (50 customers)
of the partial matches is read: enough for one address.
"""

from __future__ import annotations

from typing import Any


def same_email(found: Any, email: str) -> dict[str, Any] | None:
    """Among ``found`` (a customers page), the oldest customer whose e-mail is exactly ``email``."""
    wanted = email.strip().casefold()
    if not wanted or not isinstance(found, list):
        return None
    matches = [
        c
        for c in found
        if isinstance(c, dict)
        and isinstance(c.get("email"), str)
        and c["email"].strip().casefold() == wanted
        and str(c.get("id", "")).isdigit()
    ]
    return min(matches, key=lambda c: int(c["id"])) if matches else None
