"""Scale-out FedBuff as processes: edge aggregators behind the consistent-hash exchange, each
summing its share of every step exactly, and a root that plans, combines and commits the steps
(``aggregator.core.scaleout`` is the pure protocol; this is its AMQP shell). See docs/scaling.md.
"""
