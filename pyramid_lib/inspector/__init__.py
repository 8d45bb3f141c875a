"""An interactive inspector for trained runs (ipywidgets): pick a run, a class and a test image;
see the input, its reconstruction and error map side by side; move a threshold over the score
histogram and watch TPR, TNR and the confusion counts; browse the worst false positives and
false negatives at that threshold.

    from pyramid_lib.inspector import inspector
    app = inspector("build/notebook-runs")   # a run folder, a folder of runs, or a list of them
    app                                       # in Jupyter: the widget

`inspector(...)` returns an `Inspector`, which *is* the widget (an ipywidgets.VBox) and also
exposes its parts (`threshold`, `run`, `klass`, `image`, `errors`, ...), the current numbers
(`rates`, `false_positives`, `false_negatives`) and the matplotlib figures it draws
(`hist_fig`, `image_fig`, `gallery_fig`), so that it can be driven and checked from code.

A run (a `RunView` over its `engine.run_dir.RunDir`) needs its config.json and either scores.csv
(written by `evaluate_run`) or a checkpoint to score with.  Images, reconstructions and error
maps need the checkpoint (loaded once, `RunDir.load`) and the dataset, and come from one
`model.anomaly_map.predict` call; a run without them still shows its scores, histogram and rates.

The slider's range holds every test score and both thresholds, so the held-out-normals threshold
applies exactly even above the highest test score; `set_threshold` widens it for any other value.
Runs that would share a label in the run menu are named by their path.  A run evaluated on a test
split with masks also shows its pixel AUROC and AUPRO (metrics.csv; `metrics.pixel_metrics`).
The TPR/TNR line is the HTML widget `rates_html`, CSS class `pyramid-rates`.

Modules: `app.py` the widget, `runs.py` finding runs and reading one (`RunView`)."""

from .app import Inspector, inspector
from .runs import RunView, find_runs, run_label, run_labels

__all__ = ["inspector", "Inspector", "RunView", "find_runs", "run_label", "run_labels"]
