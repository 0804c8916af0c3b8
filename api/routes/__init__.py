"""One router per concern; `api.app` includes every router listed in ROUTERS."""
