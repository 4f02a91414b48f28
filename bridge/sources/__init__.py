"""Webhook sources (Stripe, Shopify): signature verification and parsing into one event shape."""
