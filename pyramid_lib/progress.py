"""The library's progress bar: tqdm.auto's, whose finished state is what a saved notebook keeps.

In a terminal this is tqdm's text bar.  In a notebook tqdm.auto draws an ipywidgets bar; the
notebook file (what papermill and nbmake save, what nbconvert renders) keeps only the text the
widget showed when it was first displayed, a frozen `0%`.  Here the bar is displayed with a
display id, and closing it replaces that saved text with the bar's final line (`100/100` and the
time taken), or with nothing for a bar that is not kept (`leave=False`).  A live notebook shows
the same final line in place of the widget.
"""

from __future__ import annotations

from tqdm.auto import tqdm as _auto

try:
    from tqdm.notebook import tqdm_notebook as _notebook
except ImportError:  # pragma: no cover - tqdm.notebook imports without ipywidgets; kept for safety
    _notebook = None


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

    def close(self):
        leave = self.leave
        super().close()
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None:
            final = self.format_meter(**self.format_dict) if leave else ""
            handle.update({"text/plain": final}, raw=True)
