"""fedmq side by side with Flower's deployment runtime on the PyTorch task
(``python -m bench.flower``; ``make bench-flower``).

A package of its own, like ``bench.torchtask``: ``python -m bench`` imports every module of
``bench`` and must load neither torch nor Flower. Flower (``flwr``) is installed only in the
benchmark's own environment (``make bench-flower-env``), never in the project's or CI's.
"""
