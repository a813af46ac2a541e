"""The HTTP API: app factory, routes, auth, error mapping."""
