"""Benchmarks: each prints its measurements and the ratio to a baseline measured in the same run."""
