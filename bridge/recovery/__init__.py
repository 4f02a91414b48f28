"""Recovery: what webhooks did not bring, and proof that the books match.

- ``backfill`` (:mod:`bridge.recovery.backfill`) reads Stripe's and Shopify's APIs for a period and
  stores what it finds in the inbox, as webhooks would have, for the mapping stage to invoice;
- ``reconcile`` (:mod:`bridge.recovery.reconcile`) compares the sources, the bridge's database and the
  Facturation.pro ledger, and with ``--fix`` enqueues what is missing;
- ``after-restore`` marks every command waiting in a restored database to be looked up before it
  is sent.

Everything these paths enqueue is *recovered* (see :mod:`bridge.outbox.enqueue`): looked up by
``api_id`` before it is created, after live sales.
"""
