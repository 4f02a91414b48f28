"""Watching the bridge: conditions an operator must hear about, and the alerts that tell them."""
