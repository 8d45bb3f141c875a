"""The engine: one run folder, the training loop, evaluation of a run.

    build.py     the device, the model and loss of a TrainConfig, library versions
    run_dir.py   RunDir: a run folder's paths, state, lock, checkpoint and outputs
    trainer.py   train(cfg, out_dir): the training loop, checkpoints, resume
    evaluate.py  evaluate_run(out_dir): scores, metrics, ROC and reconstruction figures
"""
