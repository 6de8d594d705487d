"""Figures of the PyTorch task (``python -m bench.torchtask``; ``make bench-torch``).

A package of its own so that ``python -m bench``, which imports every module of
``bench``, does not load torch.
"""
