"""Benchmarks and the viral-campaign simulator (`make bench`; see BENCHMARKS.md)."""
