"""A capacity model of a scale-out federation: broker nodes, edges and a root as queues.

``load``: the offered load and the analytic utilisation of each component;
``run``: a discrete-event simulation of the same (Poisson arrivals, FIFO
servers, virtual time) that measures utilisation, queueing delay and
staleness; ``sizing``: the fewest nodes and edges that keep every component
under a utilisation target. Pure: no broker, no wall clock.
"""
