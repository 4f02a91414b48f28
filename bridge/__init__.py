"""facturation-bridge: Stripe and Shopify sales into French invoices in Facturation.pro, exactly once."""

__version__ = "0.1.0"
