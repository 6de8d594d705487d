"""A discrete-event simulator of a federation: the strategies and trainers on a virtual clock."""
