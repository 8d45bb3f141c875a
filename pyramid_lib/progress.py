"""The library's progress bar: tqdm.auto's, whose finished state is what a saved notebook keeps.

In a terminal this is tqdm's text bar.  In a notebook tqdm.auto draws an ipywidgets bar; the
notebook file (what papermill and nbmake save, what nbconvert renders) keeps only the text the
widget showed when it was first displayed, a frozen `0%`.  Here the bar is displayed with a
display id, and closing it replaces that saved text with the bar's final line (`100/100` and the
time taken), or with nothing for a bar that is not kept (`leave=False`).  A live notebook shows
the same final line in place of the widget.

When $PYRAMID_PROGRESS_FILE names a file (notebooks/execute.py sets it for the kernels it starts),
every bar also writes its current line there, at most once a second and when it closes: the
terminal that executes a notebook shows the running cell's own progress (epoch, time left),
which a notebook kernel otherwise keeps to the notebook.
"""

from __future__ import annotations

import os
import time

from tqdm.auto import tqdm as _auto

try:
    from tqdm.notebook import tqdm_notebook as _notebook
except ImportError:  # pragma: no cover - tqdm.notebook imports without ipywidgets; kept for safety
    _notebook = None

PROGRESS_FILE_ENV = "PYRAMID_PROGRESS_FILE"  # notebooks/execute.py names the same variable
MIRROR_EVERY = 1.0  # seconds between two writes of a bar's line to that file


class tqdm(_auto):  # noqa: N801 - tqdm's own name, so that it reads like the tqdm it is
    """tqdm.auto.tqdm; in a notebook, see the module docstring."""

    def __init__(self, *args, **kwargs):
        notebook = _notebook is not None and isinstance(self, _notebook)
        if notebook:
            kwargs["display"] = False  # displayed below, with an id that close() updates
        super().__init__(*args, **kwargs)
        self._handle = None
        if notebook and not self.disable and getattr(self, "container", None) is not None:
            from IPython.display import display

            self._handle = display(self.container, display_id=True)
            self.displayed = True

    def display(self, *args, **kwargs):
        shown = super().display(*args, **kwargs)
        self._mirror()
        return shown

    def _mirror(self, final: bool = False):
        """Write this bar's line to $PYRAMID_PROGRESS_FILE (module docstring); never raises."""
        path = os.environ.get(PROGRESS_FILE_ENV)
        now = time.monotonic()
        if not path or self.disable or (not final and now - getattr(self, "_mirrored", -MIRROR_EVERY) < MIRROR_EVERY):
            return
        self._mirrored = now
        try:
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(self.format_meter(**{**self.format_dict, "ncols": 100}))
            os.replace(tmp, path)
        except OSError:  # the terminal's copy is a convenience: a full disk must not stop training
            pass

    def close(self):
        if not self.disable and not getattr(self, "_closed_mirror", False):
            self._closed_mirror = True
            self._mirror(final=True)
        leave = self.leave
        super().close()
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None:
            final = self.format_meter(**self.format_dict) if leave else ""
            handle.update({"text/plain": final}, raw=True)
