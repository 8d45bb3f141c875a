"""The inspector widget (ipywidgets); see the package docstring (`pyramid_lib.inspector`)."""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .. import threshold as thr
from ..model.anomaly_map import SCORE_NAMES
from ..plots import image_array, score_histogram, score_label, weights_note
from .runs import RunView, find_runs, run_labels

try:
    import ipywidgets as W
    from IPython.display import Image, display
except ImportError as e:  # pragma: no cover - ipywidgets is in the "notebooks" extra
    raise ImportError("the inspector needs ipywidgets: pip install -e '.[notebooks]'") from e

__all__ = ["Inspector", "inspector"]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


class Inspector(W.VBox):
    """The inspector widget; see the package docstring (`pyramid_lib.inspector`)."""

    def __init__(self, runs, score: str = "loss", data=None, device=None, n_worst: int = 6):
        dirs = find_runs(runs)
        if not dirs:
            raise FileNotFoundError(f"no run folders (config.json with scores.csv or checkpoint.pt) in {runs}; "
                                    "train and evaluate a run first")
        if score not in SCORE_NAMES:
            raise ValueError(f"score must be one of {', '.join(SCORE_NAMES)}, got {score!r}")
        self.n_worst = n_worst
        self._data = {Path(k).resolve(): v for k, v in data.items()} if isinstance(data, dict) else data
        self._device = device
        self._views: dict[Path, RunView] = {}
        self._busy = False
        self.rates: dict = {}
        self.false_positives: list[int] = []
        self.false_negatives: list[int] = []
        self.hist_fig, self.image_fig, self.gallery_fig = Figure((5.2, 3.0)), Figure((7.5, 2.5)), Figure((7.5, 1.9))

        self.run = W.Dropdown(options=list(zip(run_labels(dirs), dirs)), value=dirs[0], description="run",
                              layout=W.Layout(width="98%"))
        self.score = W.Dropdown(options=[(score_label(n), n) for n in SCORE_NAMES], value=score, description="score")
        self.klass = W.Dropdown(options=["all"], value="all", description="class")
        self.image = W.Dropdown(description="image", layout=W.Layout(width="70%"))
        self.threshold = W.FloatSlider(description="threshold", continuous_update=False, readout_format=".4g",
                                       layout=W.Layout(width="55%"))
        self.youden_button = W.Button(description="Youden (test labels)")
        self.heldout_button = W.Button(description="held-out normals")
        self.rates_html = W.HTML()
        self.rates_html.add_class("pyramid-rates")  # a stable hook for browser tests
        self.errors = W.Dropdown(description="errors", layout=W.Layout(width="70%"))
        self.image_view, self.hist_view, self.gallery_view = (W.Image(format="png") for _ in range(3))
        self.message = W.HTML()
        super().__init__([
            self.run, W.HBox([self.score, self.klass]), self.image, self.image_view, self.message,
            W.HBox([self.threshold, self.youden_button, self.heldout_button]), self.rates_html,
            self.hist_view, self.errors, self.gallery_view])

        self.run.observe(lambda c: self._on_run(), names="value")
        self.score.observe(lambda c: self._on_run(), names="value")
        self.klass.observe(lambda c: self._on_class(), names="value")
        self.image.observe(lambda c: self._on_image(), names="value")
        self.threshold.observe(lambda c: self._on_threshold(), names="value")
        self.errors.observe(lambda c: self._on_error(), names="value")
        self.youden_button.on_click(lambda b: self.set_threshold(self.youden))
        self.heldout_button.on_click(lambda b: self.set_threshold(self.heldout))
        self._on_run()

    # ---------------------------------------------------------------- state
    def _view(self, d) -> RunView:
        if d not in self._views:
            data = self._data.get(Path(d).resolve()) if isinstance(self._data, dict) else self._data
            self._views[d] = RunView(d, data, self._device)
        return self._views[d]

    @property
    def view(self) -> RunView:
        """The run shown now."""
        return self._view(self.run.value)

    @property
    def scores(self) -> np.ndarray:
        return self.view.test[self.score.value].to_numpy(dtype=float)

    @property
    def labels(self) -> np.ndarray:
        return self.view.test["label"].to_numpy()

    @property
    def youden(self) -> float:
        """The paper-style threshold: best TPR - FPR, chosen on the test labels (optimistic)."""
        return thr.youden(self.labels, self.scores)

    @property
    def heldout(self) -> float:
        """The threshold from held-out training normals (no test labels); NaN when there are none."""
        h = self.view.held_out
        return thr.from_normals(h[self.score.value]) if len(h) else float("nan")

    @property
    def selected(self) -> int | None:
        """Row of the run's test scores shown in the image view."""
        return self.image.value

    def set_threshold(self, t: float) -> None:
        """Put the threshold at `t` exactly (NaN is ignored), widening the slider's range when `t`
        lies outside it: TPR, TNR and the counts shown are then those at `t`."""
        if not np.isfinite(t):
            return
        t = float(t)
        if not self.threshold.min <= t <= self.threshold.max:
            self._busy = True
            try:
                self.threshold.max = max(t, self.threshold.max)
                self.threshold.min = min(t, self.threshold.min)
            finally:
                self._busy = False
        self.threshold.value = t

    def _range(self) -> tuple[float, float]:
        """The slider's range: every test score and both thresholds (the held-out one may lie above
        the highest test score, or below the lowest)."""
        s = self.scores
        vals = [float(np.min(s)), float(np.max(s)), self.youden] + ([self.heldout] if np.isfinite(self.heldout) else [])
        lo, hi = min(vals), max(vals)
        return lo, (hi if hi > lo else lo + 1e-9)

    def select(self, row: int) -> None:
        """Show test row `row`, switching the class filter to "all" when it hides that row."""
        if int(row) not in [v for _, v in self.image.options]:
            self.klass.value = "all"
        self.image.value = int(row)

    # ---------------------------------------------------------------- events
    def _on_run(self):
        v = self.view
        lo, hi = self._range()
        self._busy = True
        try:
            # widen the range first so that no intermediate value is out of bounds
            self.threshold.max = max(hi, self.threshold.max)
            self.threshold.min = min(lo, self.threshold.min)
            self.threshold.value = self.youden  # inside [lo, hi]: the range holds both thresholds
            self.threshold.min, self.threshold.max = lo, hi
            self.threshold.step = (hi - lo) / 1000
            self.heldout_button.disabled = not len(v.held_out)
            classes = sorted(v.test["class"].unique(), key=lambda c: (len(c), c))
            self.klass.options = ["all", *classes]
            self.klass.value = "all"
            self._fill_images()
        finally:
            self._busy = False
        self._on_threshold()

    def _fill_images(self):
        t, col = self.view.test, self.score.value
        rows = t.index if self.klass.value in (None, "all") else t.index[t["class"] == self.klass.value]
        order = sorted(rows, key=lambda i: -t[col].iloc[i])  # most anomalous first
        opts = [(f"#{i} {'anomalous' if t.label.iloc[i] else 'normal'} ({t['class'].iloc[i]}), score "
                 f"{t[col].iloc[i]:.4g}", int(i)) for i in order]
        keep = self.image.value if self.image.value in [o[1] for o in opts] else (opts[0][1] if opts else None)
        self.image.options = opts
        self.image.value = keep

    def _on_class(self):
        if self._busy:
            return
        self._busy = True
        try:
            self._fill_images()
        finally:
            self._busy = False
        self._draw_image()

    def _on_image(self):
        if not self._busy:
            self._draw_image()

    def _on_threshold(self):
        if self._busy:
            return
        t, s, y = self.threshold.value, self.scores, self.labels
        self.rates = r = thr.rates(y, s, t)
        self.rates_html.value = (
            f"<b>threshold {t:.4g}</b> (score &ge; threshold: anomalous) &nbsp; "
            f"<b>TPR {r['tpr']:.3f}</b> &nbsp; <b>TNR {r['tnr']:.3f}</b> &nbsp; accuracy {r['accuracy']:.3f}"
            f" &nbsp;|&nbsp; TP {r['tp']} &nbsp; FN {r['fn']} &nbsp; TN {r['tn']} &nbsp; FP {r['fp']}"
            f"<br><small>Youden threshold {self.youden:.4g} (chosen on the test labels: optimistic); "
            f"held-out-normals threshold {self.heldout:.4g} (fixed without test labels)</small>")
        if note := self.view.pixel_note():
            self.rates_html.value += f"<br><small>{note}</small>"
        pred = s >= t
        fp = np.flatnonzero(pred & (y == 0))
        fn = np.flatnonzero(~pred & (y == 1))
        self.false_positives = [int(i) for i in fp[np.argsort(-s[fp], kind="stable")]]
        self.false_negatives = [int(i) for i in fn[np.argsort(s[fn], kind="stable")]]
        cls = self.view.test["class"]
        opts = [(f"false positive {k + 1}: #{i} normal ({cls.iloc[i]}), score {s[i]:.4g}", i)
                for k, i in enumerate(self.false_positives[:self.n_worst])]
        opts += [(f"false negative {k + 1}: #{i} anomalous ({cls.iloc[i]}), score {s[i]:.4g}", i)
                 for k, i in enumerate(self.false_negatives[:self.n_worst])]
        self._busy = True
        try:
            self.errors.options = [("(the worst errors at this threshold)", None), *opts]
            self.errors.value = None
        finally:
            self._busy = False
        self._draw_hist()
        self._draw_gallery()
        self._draw_image()  # its verdict depends on the threshold

    def _on_error(self):
        if not self._busy and self.errors.value is not None:
            self.select(self.errors.value)

    # ---------------------------------------------------------------- drawing
    def _note(self) -> str:
        return weights_note(self.view.cfg.weights, self.view.cfg.precision)

    def _draw_hist(self):
        fig = self.hist_fig
        fig.clear()
        ax = fig.add_subplot()
        score_histogram(ax, self.labels, self.scores, self.threshold.value)
        ax.set_xlabel(f"anomaly score ({score_label(self.score.value)})")
        ax.set_title(f"{self.view.cfg.dataset}:{self.view.cfg.normal_class}{self._note()}", fontsize="small")
        fig.tight_layout()
        self.hist_view.value = _png(fig)

    def _draw_image(self):
        fig = self.image_fig
        fig.clear()
        row = self.selected
        got = None if row is None else self.view.views([row], self.score.value)
        if got is None:
            why = self.view.problem or "no image selected"
            self.message.value = f"<i>No image view for this run: {html.escape(why)}</i>"
            ax = fig.add_subplot()
            ax.text(0.5, 0.5, "no image view (scores only)", ha="center", va="center")
            ax.set_axis_off()
        else:
            self.message.value = ""
            x, x_hat, maps, masks = got
            panels = [("input", image_array(x[0]), "gray"), ("reconstruction", image_array(x_hat[0]), "gray"),
                      (f"error map ({score_label(self.score.value)})", maps[0].numpy(), "inferno")]
            if masks is not None:
                panels.append(("ground truth", masks[0].numpy(), "gray"))
            for j, (name, img, cmap) in enumerate(panels):
                ax = fig.add_subplot(1, len(panels), j + 1)
                im = ax.imshow(img, cmap=cmap, vmin=0, vmax=1 if cmap == "gray" else max(float(img.max()), 1e-12))
                if cmap != "gray":  # this image's own scale, from 0: the colour bar says how hot it is
                    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
                ax.set_title(name, fontsize="small")
                ax.set_axis_off()
            t = self.view.test
            s = float(t[self.score.value].iloc[row])
            verdict = "flagged ANOMALOUS" if s >= self.threshold.value else "passed as normal"
            truth = "anomalous" if t.label.iloc[row] else "normal"
            fig.suptitle(f"#{row}: {truth} ({t['class'].iloc[row]}), score {s:.4g} -> {verdict}{self._note()}",
                         fontsize="small")
        fig.tight_layout()
        self.image_view.value = _png(fig)

    def _draw_gallery(self):
        fig = self.gallery_fig
        fig.clear()
        rows = [("FP", i) for i in self.false_positives[:self.n_worst]] + \
               [("FN", i) for i in self.false_negatives[:self.n_worst]]
        got = self.view.views([i for _, i in rows], self.score.value) if rows else None
        if got is None:
            ax = fig.add_subplot()
            text = "no errors at this threshold" if not rows else \
                "worst errors (rows of the score table): " + ", ".join(f"{k} #{i}" for k, i in rows)
            ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize="small")
            ax.set_axis_off()
        else:
            x, s, cls = got[0], self.scores, self.view.test["class"]
            for j, (kind, i) in enumerate(rows):
                ax = fig.add_subplot(1, len(rows), j + 1)
                ax.imshow(image_array(x[j]), cmap="gray", vmin=0, vmax=1)
                ax.set_title(f"{kind} {cls.iloc[i]}\n{s[i]:.3g}", fontsize="x-small",
                             color="tab:red" if kind == "FP" else "tab:blue")
                ax.set_axis_off()
            fig.suptitle("worst false positives (FP: normal, scored highest) and false negatives "
                         "(FN: anomalous, scored lowest)", fontsize="small")
        fig.tight_layout()
        self.gallery_view.value = _png(fig)

    # ---------------------------------------------------------------- static copy
    def snapshot(self):
        """Display the current three figures as plain images: widgets do not survive nbconvert."""

        for view in (self.image_view, self.hist_view, self.gallery_view):
            display(Image(view.value))


def inspector(runs, score: str = "loss", data=None, device=None, n_worst: int = 6) -> Inspector:
    """Build the inspector over `runs` (a run folder, a folder of runs, or a list) and return it.

    `data`: a OneClassData to use for every run (or {run_dir: data}) instead of loading each
    run's dataset; `device`: where reconstructions are computed (default: CUDA if available);
    `n_worst`: how many false positives and false negatives to list and show.
    """
    return Inspector(runs, score=score, data=data, device=device, n_worst=n_worst)
