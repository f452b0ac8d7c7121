"""reasonrl: RL post-training of language models on reasoning tasks with verifiable rewards."""

__version__ = "0.1.0"
