"""Synthetic models and traffic for the demo, the end-to-end tests and the benchmarks."""
