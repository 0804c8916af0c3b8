"""Benchmarks: each module measures one issue's numbers against the baseline that issue names."""
