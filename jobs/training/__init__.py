"""Training jobs: launched in the web process (launch), sent to a queue (dispatch), run by a worker (runner,
callback, lifecycle), announced over websockets (events) and webhooks (webhooks)."""
