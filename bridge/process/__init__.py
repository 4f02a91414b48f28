"""Running the bridge as processes: the HTTP server, and serve's worker child (supervised, tied to serve)."""
