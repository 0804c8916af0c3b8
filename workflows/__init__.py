"""Deterministic Temporal workflows: they decide; activities act."""
