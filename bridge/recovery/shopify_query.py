"""The Admin GraphQL query backfill and reconcile read orders with (API version 2025-10).

Everything the ``orders/paid``, ``refunds/create`` and ``orders/cancelled`` mappings read, and no
more (a smaller query costs fewer points). :mod:`bridge.recovery.shopify_shapes` turns a node into
the REST-like JSON of the webhook.
"""

from __future__ import annotations

_MONEY = "shopMoney { amount currencyCode } presentmentMoney { amount currencyCode }"
_TAX_LINES = f"taxLines {{ rate priceSet {{ {_MONEY} }} }}"
_DISCOUNTS = f"discountAllocations {{ allocatedAmountSet {{ {_MONEY} }} }}"
_ADDRESS = "firstName lastName company phone address1 address2 zip city countryCodeV2"

ORDERS_QUERY = f"""
query BridgeBackfillOrders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id name email test createdAt processedAt cancelledAt
      currencyCode presentmentCurrencyCode taxesIncluded displayFinancialStatus
      paymentGatewayNames
      totalPriceSet {{ {_MONEY} }}
      customer {{ id firstName lastName email }}
      billingAddress {{ {_ADDRESS} }}
      lineItems(first: 250) {{
        nodes {{
          id name title quantity isGiftCard
          originalUnitPriceSet {{ {_MONEY} }}
          {_DISCOUNTS}
          {_TAX_LINES}
        }}
      }}
      shippingLines(first: 20, includeRemovals: true) {{
        nodes {{ title isRemoved originalPriceSet {{ {_MONEY} }} {_DISCOUNTS} {_TAX_LINES} }}
      }}
      refunds(first: 50) {{
        id createdAt note
        refundLineItems(first: 250) {{
          nodes {{
            quantity
            subtotalSet {{ {_MONEY} }}
            totalTaxSet {{ {_MONEY} }}
            lineItem {{ name title taxLines {{ rate }} }}
          }}
        }}
        refundShippingLines(first: 20) {{
          nodes {{ subtotalAmountSet {{ {_MONEY} }} taxAmountSet {{ {_MONEY} }} }}
        }}
        orderAdjustments(first: 20) {{
          nodes {{ reason amountSet {{ {_MONEY} }} taxAmountSet {{ {_MONEY} }} }}
        }}
        transactions(first: 20) {{
          nodes {{ kind status gateway amountSet {{ {_MONEY} }} }}
        }}
      }}
    }}
  }}
}}
"""
