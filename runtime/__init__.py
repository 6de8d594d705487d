"""Process plumbing the services share: flags, logging, signals, event logs, metrics, background
work.
"""
