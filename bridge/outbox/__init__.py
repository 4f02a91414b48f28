"""Commands out: stored once, claimed under a lease, delivered to Facturation.pro within its quota."""
