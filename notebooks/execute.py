"""Execute the notebooks (`make notebooks`) and render what was executed (`make html`).

    python notebooks/execute.py run  OUT NOTEBOOK... [-p NAME VALUE]...   papermill, outputs kept
    python notebooks/execute.py html OUT HTML NOTEBOOK...                 nbconvert, executes nothing

`run` executes each notebook with papermill into a hidden `OUT/.<name>.partial.ipynb`, showing
which notebook runs, a bar of its cells and, under it, the running cell's own progress bar (the
epochs of a training run and the time left: the library's bars write their line to the file
$PYRAMID_PROGRESS_FILE names, which `run` sets for the kernel and follows), then records in the copy's metadata
(`pyramid_ad`) the data each `tutorial.load_data` call used (real, or which stand-in), the
parameters, the time and the wall seconds.  The copy then replaces `OUT/<name>.ipynb`, except:

* a failed execution is kept beside it as `OUT/<name>.failed.ipynb` (the error in its cell); the
  copy of an earlier success stays;
* a notebook executed on a stand-in never replaces one executed on real data: it is kept as
  `OUT/<name>.stand-in.ipynb`, and the refusal names both data sources.

The kernels talk to papermill over local IPC sockets instead of TCP (the kernel's transport
setting): nothing is sent over the network, so the kernel has no unencrypted port to warn about.
Each execution's sockets live in a temporary folder of their own, so two executions at once never
share them.

`html` renders `OUT/<name>.ipynb` of each notebook to `HTML/<name>.html` (and a failed execution
to `HTML/<name>.failed.html`), says which notebooks failed or were never executed, and exits 1 if
any did, after writing every page it could.  The pages fetch nothing from another host: formulas
are typeset by the MathJax that the `jupyter-server-mathjax` package ships, copied once into
`HTML/_mathjax/` (the template `notebooks/templates/offline` leaves out what nbconvert's lab page
loads from public CDNs), so they render on a machine with no network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

# the mime type under which tutorial.load_data records the data a notebook used
DATA_SOURCE_MIME = "application/vnd.pyramid-ad.data-source+json"
STATUS = "status.json"  # OUT/status.json: the last execution of each notebook, for `html`
# the file into which the kernel's progress bars (pyramid_lib.progress) write their current line
PROGRESS_FILE_ENV = "PYRAMID_PROGRESS_FILE"


class CellProgress:
    """Show, under papermill's bar of cells, the line the kernel's progress bars last wrote to
    `path` (checked every `every` seconds, in a thread), until closed.  A context manager."""

    def __init__(self, path: Path, every: float = 1.0):
        self.path, self.every, self.seen, self.bar = path, every, None, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.show()  # the last line written, even one that came after the last check
        if self.bar is not None:
            self.bar.close()

    def show(self) -> None:
        try:
            line = self.path.read_text(encoding="utf-8").strip()
        except OSError:  # not written yet, or being replaced
            return
        if line and line != self.seen:
            from tqdm import tqdm

            if self.bar is None:
                self.bar = tqdm(total=0, bar_format="    {desc}", leave=False, file=sys.stderr)
            self.seen = line
            self.bar.set_description_str(f"cell: {line}")

    def _follow(self) -> None:
        while not self._stop.wait(self.every):
            self.show()


def data_sources(nb) -> list[dict]:
    """The data-source records a notebook's outputs hold, in cell order (one per load_data call)."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "display_data" and DATA_SOURCE_MIME in out.get("data", {}):
                found.append(dict(out["data"][DATA_SOURCE_MIME]))
    return found


def describe(sources: list[dict]) -> str:
    """One phrase for a notebook's data: 'real mvtec:bottle from /data', 'STAND-IN ...', 'no dataset'."""
    if not sources:
        return "no dataset"
    return "; ".join(f"{'STAND-IN ' + s['used'] + ' for ' if s.get('stand_in') else 'real '}"
                     f"{s['dataset']}:{s['normal_class']} from {s['root']}" for s in sources)


def on_real_data(meta: dict) -> bool:
    """Whether an executed copy's record says it loaded data and none of it was a stand-in."""
    sources = meta.get("data_sources") or []
    return bool(sources) and not any(s.get("stand_in") for s in sources)


def refusal(old_meta: dict | None, new_meta: dict) -> str | None:
    """Why the new execution must not replace the old one (the old on real data, the new not), or None."""
    if old_meta is None or not on_real_data(old_meta) or on_real_data(new_meta):
        return None
    return (f"executed on {describe(old_meta['data_sources'])} ({old_meta.get('executed_at', '?')}); this run "
            f"used {describe(new_meta.get('data_sources') or [])}")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _value(text: str):
    """A -p value as papermill's command line reads it: None, int, float, bool, else the string."""
    if text in ("None", "null"):
        return None
    if text in ("True", "true", "False", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run(out: Path, notebooks: list[Path], parameters: dict) -> int:
    """Execute `notebooks` into `out` (module docstring); return the number that failed or were refused."""
    import nbformat
    import papermill
    from traitlets.config import Config

    out.mkdir(parents=True, exist_ok=True)
    status_file = out / STATUS
    status = json.loads(status_file.read_text()) if status_file.is_file() else {}
    bad = []
    for i, nb_path in enumerate(notebooks, start=1):
        name = nb_path.stem
        target, partial = out / nb_path.name, out / f".{name}.partial.ipynb"
        print(f"[{i}/{len(notebooks)}] {nb_path} -> {target}", flush=True)
        t0, error = time.perf_counter(), None
        try:
            # each kernel's sockets in a folder of its own: two executions at once (two `make notebooks`, or
            # `run` beside nbmake) must not share the default ./kernel-ipc-N files, or their messages cross
            sockets = Path(tempfile.mkdtemp(prefix="pyramid-kernel-"))
            before = os.environ.get(PROGRESS_FILE_ENV)
            os.environ[PROGRESS_FILE_ENV] = str(sockets / "progress.txt")  # the kernel inherits the environment
            try:
                with CellProgress(sockets / "progress.txt"):
                    papermill.execute_notebook(
                        str(nb_path), str(partial), parameters=parameters, cwd=str(nb_path.parent),
                        kernel_name="python3", progress_bar=True, execution_timeout=1800,
                        config=Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / "kernel")}}))
            finally:
                if before is None:
                    os.environ.pop(PROGRESS_FILE_ENV, None)
                else:
                    os.environ[PROGRESS_FILE_ENV] = before
                shutil.rmtree(sockets, ignore_errors=True)
        except Exception as e:  # papermill's execution error, a dead kernel, a timeout: this notebook only
            error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"[:300]
        seconds = time.perf_counter() - t0
        if not partial.is_file():  # the kernel did not even start
            status[name] = {"ok": False, "kind": "failed", "message": error or "no output written",
                            "seconds": round(seconds)}
            bad.append(name)
            print(f"    FAILED after {seconds:.0f} s: {status[name]['message']}", flush=True)
            continue
        nb = nbformat.read(partial, as_version=4)
        meta = {"data_sources": data_sources(nb), "parameters": parameters, "seconds": round(seconds),
                "executed_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "ok": error is None}
        nb.metadata["pyramid_ad"] = meta
        old = nbformat.read(target, as_version=4).metadata.get("pyramid_ad") if target.is_file() else None
        why_not = refusal(old, meta)
        if error is not None:
            kind, kept = "failed", out / f"{name}.failed.ipynb"
            message = f"failed ({error}); the execution with the error is {kept}"
        elif why_not is not None:
            kind, kept = "refused", out / f"{name}.stand-in.ipynb"
            message = f"REFUSED to replace {target}: it was {why_not}; the new execution is {kept}"
        else:
            kind, kept, message = "done", target, f"done on {describe(meta['data_sources'])}"
            for stale in (f"{name}.failed.ipynb", f"{name}.stand-in.ipynb"):  # superseded by this success
                (out / stale).unlink(missing_ok=True)
        nbformat.write(nb, partial)
        os.replace(partial, kept)
        status[name] = {"ok": kept == target, "kind": kind, "message": message, "seconds": round(seconds),
                        "executed_at": meta["executed_at"]}
        _atomic_write(status_file, json.dumps(status, indent=1, sort_keys=True) + "\n")
        print(f"    {message}; {seconds:.0f} s", flush=True)
        if kept != target:
            bad.append(name)
    if bad:
        print(f"NOT REPLACED ({len(bad)} of {len(notebooks)}): {', '.join(bad)}; see the lines above", flush=True)
    return len(bad)


TEMPLATES = Path(__file__).resolve().parent / "templates"
GLOSSARY = Path(__file__).resolve().parent / "GLOSSARY.md"  # the notebooks link to it; `html` renders it too
MATHJAX_DIR = "_mathjax"  # beside the pages
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"  # the combined configuration the package ships


def local_mathjax(html_dir: Path) -> str:
    """Copy the MathJax of the jupyter-server-mathjax package into `html_dir/_mathjax` (once per
    version: a `VERSION` file says which) and return the URL of its loader relative to the pages.
    Raises ImportError naming the package when it is not installed."""
    try:
        import jupyter_server_mathjax
    except ImportError as e:
        raise ImportError("make html needs the package jupyter-server-mathjax (pip install jupyter-server-mathjax): "
                          "it ships the MathJax the pages use offline") from e
    from jupyter_server_mathjax.__version__ import __version__

    source, target = Path(jupyter_server_mathjax.__file__).parent / "static", html_dir / MATHJAX_DIR
    stamp = target / "VERSION"
    if not (stamp.is_file() and stamp.read_text().strip() == __version__):
        partial = html_dir / f".{MATHJAX_DIR}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial)
        (partial / "VERSION").write_text(__version__ + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
    return f"{MATHJAX_DIR}/MathJax.js?config={MATHJAX_CONFIG}"


def html(out: Path, html_dir: Path, notebooks: list[Path]) -> int:
    """Render the executed copies of `notebooks` found in `out` into `html_dir`; executes nothing.
    Besides `<name>.html`, a kept failed or stand-in execution gets `<name>.failed.html` or
    `<name>.stand-in.html`.  Returns the number of notebooks whose last execution failed or that
    were never executed (a refused stand-in execution is said, not counted: the page shows the
    execution on real data, as it should)."""
    import nbformat
    from nbconvert import HTMLExporter

    html_dir.mkdir(parents=True, exist_ok=True)
    status = json.loads((out / STATUS).read_text()) if (out / STATUS).is_file() else {}
    exporter = HTMLExporter(extra_template_basedirs=[str(TEMPLATES)], template_name="offline",
                            mathjax_url=local_mathjax(html_dir))
    bad, said = [], []
    for nb_path in notebooks:
        name = nb_path.stem
        for suffix in ("", ".failed", ".stand-in"):
            src, page = out / f"{name}{suffix}.ipynb", html_dir / f"{name}{suffix}.html"
            if not src.is_file():
                page.unlink(missing_ok=True)  # a page of an execution since superseded
                continue
            nb = nbformat.read(src, as_version=4)
            body, _ = exporter.from_notebook_node(nb)
            _atomic_write(page, body.replace(f'href="{GLOSSARY.name}', f'href="{GLOSSARY.stem}.html'))
            meta = nb.metadata.get("pyramid_ad", {})
            print(f"{page}  ({describe(meta.get('data_sources') or [])}, executed {meta.get('executed_at', '?')})")
        last = status.get(name)
        if not (out / f"{name}.ipynb").is_file():
            bad.append(f"{name}: " + (f"never executed successfully ({last['message']})" if last else "not executed"))
        elif last and last.get("kind") == "failed":
            bad.append(f"{name}: its last execution {last['message']}; {name}.html shows the earlier one")
        elif last and last.get("kind") == "refused":
            said.append(f"{name}: {last['message']}")
    if GLOSSARY.is_file():  # the terms the pages link to, rendered as a page of its own (formulas offline too)
        page = html_dir / f"{GLOSSARY.stem}.html"
        glossary = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(GLOSSARY.read_text(encoding="utf-8"))])
        _atomic_write(page, exporter.from_notebook_node(glossary, resources={"metadata": {"name": "Glossary"}})[0])
        print(f"{page}  (the glossary the pages link to)")
    if said:
        print("KEPT THE EXECUTION ON REAL DATA:\n  " + "\n  ".join(said))
    if bad:
        print("NOT RENDERED FROM A SUCCESSFUL LAST EXECUTION:\n  " + "\n  ".join(bad)
              + "\n(`make notebooks` executes them)")
    return len(bad)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute notebooks with papermill")
    r.add_argument("out", type=Path)
    r.add_argument("notebooks", nargs="+", type=Path)
    r.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    h = sub.add_parser("html", help="render executed notebooks with nbconvert")
    h.add_argument("out", type=Path)
    h.add_argument("html_dir", type=Path)
    h.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        return 1 if run(args.out, args.notebooks, {k: _value(v) for k, v in args.parameter}) else 0
    return 1 if html(args.out, args.html_dir, args.notebooks) else 0


if __name__ == "__main__":
    sys.exit(main())
