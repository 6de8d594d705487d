"""A discrete-event simulator of a federation: fedmq's strategies and trainers on a virtual clock."""
