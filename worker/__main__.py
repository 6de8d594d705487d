from fedmq.cli import entry

entry("worker")
