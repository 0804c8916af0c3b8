"""The HTTP edge: the webhook gateway and the REST API (FastAPI)."""
