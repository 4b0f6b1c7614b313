"""Benchmarks against the vendors' documented limits and of the processing path (issue 10)."""
