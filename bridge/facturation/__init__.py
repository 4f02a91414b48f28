"""The Facturation.pro API: the client the worker uses, and a local sandbox of the API."""
