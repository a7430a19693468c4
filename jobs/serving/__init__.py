"""Serving: the web process's engines, classify (the DRF view and the ASGI fast path share it), file
classification jobs, and the classify rate."""
