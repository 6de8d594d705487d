"""Support for tests and benchmarks: real processes, private broker nodes, attacks, hostile input."""
