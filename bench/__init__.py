"""fedmq's benchmarks (speed and cost targets live here, not in timed tests)."""
