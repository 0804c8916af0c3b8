"""Activities: every side effect a workflow asks for (provider calls, database writes)."""
