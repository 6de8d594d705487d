from fedmq.cli import entry

entry("aggregator")
