"""Webhooks in: verify, parse into one shape, store durably before answering."""
