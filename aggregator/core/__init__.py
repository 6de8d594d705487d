"""The aggregator's functional core: strategies, staleness, validation, defences, DP, state (no
I/O).
"""
