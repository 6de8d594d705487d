"""The aggregator's imperative shell: the service loop and what touches the broker, the clock and
the disk.
"""
