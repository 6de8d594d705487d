"""Built-in tasks (data, models, local training) behind the trainer contract of ``training``."""
