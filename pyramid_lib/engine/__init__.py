"""The engine: one run folder, the training loop, evaluation of a run."""
