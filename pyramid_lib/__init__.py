"""pyramid-ad: a tutorial and reproduction kit for "Image Anomaly Detection by aggregating deep
pyramidal representations" (Mishra, Piciarelli, Foresti, ICPR 2020).

    from pyramid_lib import TrainConfig, load, train, evaluate_run, RunDir, predict
    cfg = TrainConfig(dataset="mnist-sample", normal_class="0", epochs=2)
    train(cfg, "runs/demo"); evaluate_run("runs/demo")

Layout, top to bottom; a module imports only from the layers below it (`lint-imports` checks it):

    cli.py, arguments.py, __main__.py   the command line `pyramid-ad` (commands; their parser)
    reporting/            tables.py, figures.py, analysis.py, pages.py: results pages (only cli imports it)
    tutorial.py           what the notebooks call        inspector/     app.py, runs.py: the ipywidgets inspector
    experiments/          plan.py (which runs), jobs.py (one run), results.py, sweep.py, executors.py, demo.py
    baselines.py          OC-SVM, KDE, plain autoencoders
    engine/               build.py, run_dir.py (RunDir), trainer.py (train), evaluate.py (evaluate_run),
                          score_files.py (score_files: `pyramid-ad predict`), score_inputs.py
    config.py             TrainConfig and its profiles (quick / laptop / cpu / paper)
    model/                network.py (PyramidalAutoencoder, ModelConfig), loss.py (PyramidLoss),
                          anomaly_map.py (predict, scores, error maps), weights.py, fast.py, introspect.py
    data/                 images.py, mnist.py, folder.py, datasets.py (load), splits.py
    metrics.py threshold.py paper.py plots.py files.py progress.py   utilities    errors.py   the exceptions

The names in `__all__` are the public API; everything else is reachable by its module path.
"""

__version__ = "0.1.0"

from .config import TrainConfig
from .data import load
from .engine.evaluate import evaluate_run
from .engine.run_dir import RunDir
from .engine.score_files import FileScores, score_files
from .engine.trainer import train
from .model import ModelConfig, PyramidalAutoencoder, PyramidLoss, predict

__all__ = [
    "ModelConfig",
    "PyramidLoss",
    "FileScores",
    "PyramidalAutoencoder",
    "RunDir",
    "TrainConfig",
    "__version__",
    "evaluate_run",
    "load",
    "predict",
    "score_files",
    "train",
]
