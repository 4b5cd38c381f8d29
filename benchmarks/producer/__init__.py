"""Producer benchmark: `python -m benchmarks.producer` (see __main__.py)."""
