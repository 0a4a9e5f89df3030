"""Team mode: the REST server over every store operation, its auth, and the web UI."""
