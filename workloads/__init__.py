"""Reproducible inputs shared by tests and benchmarks (so benchmarks import no test code)."""
