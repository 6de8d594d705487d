"""Local training as every role sees it: the trainer contract, arrays, task settings, loading."""
