"""Support for tests and benchmarks: processes, private broker nodes, attacks, hostile input."""
