"""Shopify Admin API look-ups the mapping stage needs: a customer's metafields.

An ``orders/paid`` webhook does not carry metafields. Merchants often keep a B2B customer's VAT
number (or SIRET) in a customer metafield, so the ``customer_metafields`` enrichment reads them,
while mapping a stored event (never in the web request), in one GraphQL query per order, each
metafield under an alias::

    query CustomerMetafields($id: ID!, $ns0: String!, $key0: String!, …) {
      customer(id: $id) { m0: metafield(namespace: $ns0, key: $key0) { value } … }
    }

(``QueryRoot.customer(id:)``, ``HasMetafields.metafield(namespace:, key:)``, ``Metafield.value``;
the token needs the ``read_customers`` scope). Which metafields to read is data: the entries of
the mapping file's ``tables.legal_ids`` whose name ends in ``_metafield``, each
``"namespace.key"``; the result is an object named by what precedes ``_metafield``::

    tables.legal_ids.vat_number_metafield: "custom.vat_number"  ->  {"vat_number": "DE…"}

Only the shop the token belongs to is asked (``SHOPIFY_SHOP_DOMAIN``, case-insensitively); an
event from another shop gets null, as does a customer that does not exist. A metafield that is
not set is null in the object.

Errors::

    ShopifyLookupError   Shopify unreachable, 5xx, throttled, token or scope refused: retry later
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from bridge.config import Settings
from bridge.recovery.shopify_api import ShopifyAdmin, ShopifyApiError

TABLE = "legal_ids"
SUFFIX = "_metafield"
CUSTOMER_GID = "gid://shopify/Customer/"
# A metafield namespace (app-owned ones start with "$app:") and key, as Shopify allows them.
_METAFIELD = re.compile(r"(?P<namespace>(?:\$app:)?[A-Za-z0-9_-]+)\.(?P<key>[A-Za-z0-9_-]+)")

Metafields = dict[str, tuple[str, str]]  # result name -> (namespace, key)


class ShopifyLookupError(Exception):
    """The Shopify Admin API could not answer: retry the mapping later."""

    retryable = True  # the mapping stage tries the event again later instead of failing it


class ShopifyLookup(Protocol):
    def customer_metafields(
        self, shop: str | None, customer: str, metafields: Metafields
    ) -> dict[str, str | None] | None:
        """Each metafield's value (null when not set); null for another shop or no such customer."""
        ...


def metafields_of(tables: Mapping[str, Mapping[str, Any]]) -> Metafields:
    """The metafields a file asks for (see the module's docstring); ``ValueError`` names a bad one.

    An entry that is null or empty asks for nothing (a way to turn one off in a user mapping).
    """
    wanted: Metafields = {}
    for name, value in (tables.get(TABLE) or {}).items():
        if not name.endswith(SUFFIX) or value in (None, ""):
            continue
        match = _METAFIELD.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(
                f"tables.{TABLE}.{name}: expected a metafield as namespace.key "
                f"(e.g. custom.vat_number), got {value!r}"
            )
        wanted[name.removesuffix(SUFFIX)] = (match["namespace"], match["key"])
    return wanted


def customer_gid(customer: Any) -> str:
    """A customer's GraphQL id from the webhook's numeric id (or a gid as it is)."""
    text = str(customer)
    number = text.removeprefix(CUSTOMER_GID)
    if (
        isinstance(customer, int | str)
        and not isinstance(customer, bool)
        and number.isascii()
        and number.isdigit()
    ):
        return CUSTOMER_GID + number
    raise ValueError(f"expected a Shopify customer id, got {text[:60]!r}")


def metafields_query(metafields: Metafields) -> tuple[str, dict[str, str]]:
    """The query for ``metafields`` (aliases ``m0``, ``m1``… in order) and its variables."""
    params, fields = ["$id: ID!"], []
    variables: dict[str, str] = {}
    for n, (namespace, key) in enumerate(metafields.values()):
        params.append(f"$ns{n}: String!, $key{n}: String!")
        fields.append(f"    m{n}: metafield(namespace: $ns{n}, key: $key{n}) {{ value }}\n")
        variables |= {f"ns{n}": namespace, f"key{n}": key}
    head = f"query CustomerMetafields({', '.join(params)}) {{\n  customer(id: $id) {{\n"
    return head + "".join(fields) + "  }\n}", variables


class HttpShopifyLookup:
    """The look-up through :class:`ShopifyAdmin`, one attempt per mapping (the stage retries)."""

    def __init__(self, admin: ShopifyAdmin, shop_domain: str) -> None:
        self._admin = admin
        self._shop = shop_domain.lower()

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpShopifyLookup | None:
        """One when ``SHOPIFY_ADMIN_TOKEN`` and ``SHOPIFY_SHOP_DOMAIN`` are set, else None."""
        token = settings.shopify_admin_token.get_secret_value()
        if not token or not settings.shopify_shop_domain:
            return None
        admin = ShopifyAdmin(settings.shopify_graphql_url, token, timeout=20.0, attempts=1)
        return cls(admin, settings.shopify_shop_domain)

    def close(self) -> None:
        self._admin.close()

    def customer_metafields(
        self, shop: str | None, customer: str, metafields: Metafields
    ) -> dict[str, str | None] | None:
        if not metafields or (shop or "").lower() != self._shop:
            return None
        document, variables = metafields_query(metafields)
        try:
            data = self._admin.query(document, {"id": customer_gid(customer)} | variables)
        except ShopifyApiError as exc:
            raise ShopifyLookupError(f"metafields of customer {customer}: {exc}") from None
        found = data.get("customer")
        if not isinstance(found, dict):
            return None  # Shopify answers null for a customer that does not exist
        values: dict[str, str | None] = {}
        for n, name in enumerate(metafields):
            field = found.get(f"m{n}")
            value = field.get("value") if isinstance(field, dict) else None
            values[name] = value if isinstance(value, str) else None
        return values
