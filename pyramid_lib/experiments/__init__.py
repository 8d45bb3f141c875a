"""Experiments: the runs of a paper item, planned, run one by one and swept (locally, on GPUs, through submitit).

    plan.py       which runs a paper item needs (Job), plan.csv
    jobs.py       one job: train and evaluate, or a baseline
    sweep.py      run a plan, skip finished runs, collect the results
    executors.py  local processes, one per GPU, or SLURM through submitit (only sweep.py uses them)
    demo.py       the offline demo (`pyramid-ad demo`)
"""
