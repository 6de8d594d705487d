"""Differential privacy for fedmq: clipping, Gaussian noise, DP-SGD and accounting.

Pure functions and small state objects, used by both the aggregator (user-level
DP) and the built-in worker trainers (record-level DP-SGD). Nothing here does
I/O except ``privacy.ledgerfile``, which the worker's trainer uses to keep its
spending across restarts. The guarantees and their assumptions are stated in
``docs/privacy.md``.
"""
