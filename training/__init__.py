"""Local training as every role sees it: the trainer contract, model arrays, task settings, loading."""
