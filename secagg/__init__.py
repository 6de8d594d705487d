"""SecAgg+ for FedBuff buffers: the pure cryptographic core.

Workers mask their quantized, weighted updates so that the aggregator learns
only the sum of a buffer (Bell et al. 2020, "Secure Single-Server Aggregation
with (Poly)Logarithmic Overhead", on the protocol of Bonawitz et al. 2017).
Nothing here touches the broker, the clock or the disk: ``client`` and
``server`` are explicit state machines that take and return typed messages.
"""
