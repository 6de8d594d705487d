"""Benchmarks and figure-producing runs (`python -m bench.<name>`); not part of the test suite."""
