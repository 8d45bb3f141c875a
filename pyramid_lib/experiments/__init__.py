"""Experiments: planning the runs of a paper item, sweeping them (locally, on GPUs, through submitit), the demo."""
