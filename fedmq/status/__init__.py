"""``fedmq status``: read a federation's health from the broker without disturbing it."""
