"""What the notebooks tell a student, and the tools that execute and render them.

* `tutorial.verdict`: the sentence printed under a run's AUROC is chosen from the number (works,
  close to chance, below chance) and says STAND-IN whenever the data was one.
* notebooks/execute.py: the data source each executed copy records; a notebook executed on a
  stand-in never replaces one executed on real data; `html` renders what is there, executes
  nothing, and names what failed.
* Every parameters cell parses with papermill (no "Unable to parse line" warning).
* Slow: 05 executed on the real data and on the stand-ins (quick profile, nbclient); every
  result sentence it printed agrees with the numbers printed beside it: the explanation of a
  weak result only when the AUROC is weak, near or below chance, STAND-IN exactly when the data
  was one (tests/test_weak_results.py checks the explanation's words against its numbers).
"""

import importlib.util
import logging
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

from pyramid_lib.tutorial import CHANCE_MARGIN, DATA_SOURCE_MIME, WORKS_FROM, verdict

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REAL_DATA = Path(os.environ.get("PYRAMID_DATA") or REPO / "data").resolve()  # the notebook runs in notebooks/


def load_execute():
    spec = importlib.util.spec_from_file_location("nb_execute", REPO / "notebooks" / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


execute = load_execute()


@pytest.mark.parametrize("auroc, case", [(0.95, "works"), (0.8, "works"), (0.65, "weak"), (0.55, "chance"),
                                         (0.45, "chance"), (0.2, "inverted")])
def test_the_verdict_is_chosen_from_the_auroc(auroc, case):
    got, text = verdict(auroc)
    assert got == case and f"{auroc:.3f}" in text and "STAND-IN" not in text
    assert ("close to chance" in text) == (abs(auroc - 0.5) < CHANCE_MARGIN)
    stand_in, text = verdict(auroc, note="USING THE STAND-IN ...")
    assert stand_in == "stand-in" and text.startswith("STAND-IN DATA") and f"{auroc:.3f}" in text


def executed(sources, ok=True):
    """A hand-made executed notebook whose outputs record `sources` (dicts as load_data leaves them)."""
    cell = nbformat.v4.new_code_cell("x", execution_count=1, outputs=[
        nbformat.v4.new_output("display_data", data={DATA_SOURCE_MIME: s, "text/plain": ""}) for s in sources])
    return nbformat.v4.new_notebook(cells=[cell])


REAL = {"dataset": "mvtec", "normal_class": "bottle", "stand_in": False, "used": "mvtec:bottle", "root": "/data"}
STAND_IN = {"dataset": "mvtec", "normal_class": "bottle", "stand_in": True, "used": "folder:synthetic",
            "root": "/empty"}


def test_an_execution_on_a_stand_in_never_replaces_one_on_real_data():
    real = {"data_sources": execute.data_sources(executed([REAL])), "executed_at": "2026-12-07 03:00 UTC"}
    fake = {"data_sources": execute.data_sources(executed([REAL, STAND_IN]))}
    assert real["data_sources"] == [REAL] and execute.on_real_data(real) and not execute.on_real_data(fake)
    why = execute.refusal(real, fake)
    assert "real mvtec:bottle from /data (2026-12-07 03:00 UTC)" in why
    assert "STAND-IN folder:synthetic for mvtec:bottle from /empty" in why
    assert execute.refusal(real, real) is None and execute.refusal(fake, real) is None
    assert execute.refusal(None, fake) is None and execute.refusal({"data_sources": []}, fake) is None
    assert execute.describe([]) == "no dataset"


def test_every_execution_gets_its_own_kernel_sockets_and_they_are_removed(tmp_path, monkeypatch):
    """Two executions at once must not share IPC socket files (their kernels' messages would cross)."""
    import papermill

    seen = []

    def fake_execute(src, dst, config=None, **kw):
        ip = Path(config.KernelManager.ip)
        assert config.KernelManager.transport == "ipc" and ip.parent.is_dir()
        seen.append(ip)
        Path(dst).write_text(Path(src).read_text())

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    nb = tmp_path / "01_x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), nb)
    execute.run(tmp_path / "out", [nb, nb], {})
    assert len(seen) == 2 and seen[0].parent != seen[1].parent
    assert not any(p.parent.exists() for p in seen)


def test_html_renders_what_was_executed_and_names_what_failed(tmp_path, capsys):
    pytest.importorskip("nbconvert")
    out, html = tmp_path / "executed", tmp_path / "html"
    out.mkdir()
    nbformat.write(executed([REAL]), out / "05_mvtec.ipynb")
    nbformat.write(executed([STAND_IN]), out / "05_mvtec.stand-in.ipynb")
    nbformat.write(executed([STAND_IN]), out / "03_mnist.failed.ipynb")
    (out / execute.STATUS).write_text('{"03_mnist": {"ok": false, "kind": "failed", "message": "failed (boom)"}, '
                                      '"05_mvtec": {"ok": false, "kind": "refused", "message": "REFUSED (x)"}}')
    names = [Path("notebooks/03_mnist.ipynb"), Path("notebooks/05_mvtec.ipynb"), Path("notebooks/08_ablations.ipynb")]
    assert execute.html(out, html, names) == 2
    assert sorted(p.name for p in html.iterdir()) == ["03_mnist.failed.html", "05_mvtec.html",
                                                      "05_mvtec.stand-in.html", "GLOSSARY.html", "_mathjax"]
    said = capsys.readouterr().out
    assert "KEPT THE EXECUTION ON REAL DATA:\n  05_mvtec: REFUSED (x)" in said
    assert "03_mnist: never executed successfully (failed (boom))" in said
    assert "08_ablations: not executed" in said
    assert sorted(p.name for p in out.iterdir()) == ["03_mnist.failed.ipynb", "05_mvtec.ipynb",
                                                     "05_mvtec.stand-in.ipynb", "status.json"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_parameters_cell_parses_with_papermill(path, caplog):
    translators = pytest.importorskip("papermill.translators")
    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    with caplog.at_level(logging.WARNING, logger="papermill"):
        found = [p.name for p in translators.PythonTranslator.inspect(cell)]
    assert not [r.message for r in caplog.records], f"{path.name}: papermill warned"
    assert {"PROFILE", "DEVICE", "DATA_ROOT", "WORK"} <= set(found)


# --- the notebooks on two data situations -------------------------------------------------------

AUROC = re.compile(r"AUROC (\d\.\d{3})")


def result_sentences(nb) -> list[str]:
    """Every printed line of a notebook's outputs (stdout), in order."""
    lines = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                lines += out["text"].splitlines()
    return lines


def contradictions(lines: list[str], stand_in: bool) -> list[str]:
    """The result sentences of 05 that its own numbers contradict (empty: none)."""
    bad = []
    level = next((ln for ln in lines if ln.strip().startswith("image level:")), None)
    if level is None:
        return ["no 'image level:' sentence printed"]
    auroc = float(AUROC.search(level).group(1))
    expected = verdict(auroc, "x" if stand_in else "")[1]
    if expected not in level:
        bad.append(f"printed {level.strip()!r}, the AUROC {auroc} calls for {expected!r}")
    why = any(ln.startswith("WHY IT IS") for ln in lines)
    if why != (verdict(auroc, "x" if stand_in else "")[0] in ("chance", "inverted", "weak")):
        bad.append(f"the weak result's explanation {'printed' if why else 'missing'} at AUROC {auroc}")
    if any("method works here" in ln or "did not stop it" in ln for ln in lines) and auroc < WORKS_FROM:
        bad.append(f"'works' printed at AUROC {auroc}")
    if stand_in != any("USING THE STAND-IN" in ln for ln in lines):
        bad.append("the stand-in banner does not match the data situation")
    return bad


def test_the_check_finds_a_contradicted_sentence():
    works = verdict(0.9)[1]
    ok = ["image level: " + works]
    assert contradictions(ok, stand_in=False) == []
    assert contradictions(ok + ["WHY IT IS NEAR CHANCE HERE (chosen from the numbers above):"], stand_in=False)
    assert contradictions(["image level: " + verdict(0.52)[1]], stand_in=False)  # the explanation is missing
    assert contradictions(["image level: " + works.replace("0.900", "0.520")], stand_in=False)


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("situation", ["real data", "stand-ins"])
def test_05_says_what_its_numbers_show_on_real_data_and_on_stand_ins(situation, tmp_path):
    """05 in the quick profile (about 15 optimiser steps), executed with nbclient as nbmake does."""
    pytest.importorskip("nbclient")
    root = REAL_DATA if situation == "real data" else tmp_path / "empty"
    if situation == "real data" and not any((root / "mvtec_ad" / c / "train" / "good").is_dir()
                                            for c in ("bottle", "grid")):
        pytest.skip(f"no MVTec bottle or grid under {root}/mvtec_ad: set PYRAMID_DATA")
    nb = nbformat.read(REPO / "notebooks" / "05_mvtec.ipynb", as_version=4)
    nb = run_cells([c.source for c in nb.cells if c.cell_type == "code"], tmp_path, PYRAMID_PROFILE="quick",
                   PYRAMID_DATA=str(root), PYRAMID_WORK=str(tmp_path / "work"))
    lines = result_sentences(nb)
    assert not contradictions(lines, stand_in=situation == "stand-ins"), "\n".join(lines)
    assert any("estimated time on this machine now" in ln for ln in lines)


def run_cells(sources: list[str], tmp_path, **env) -> nbformat.NotebookNode:
    """Execute a notebook of `sources` in a fresh kernel (nbclient, as nbmake and papermill do),
    the kit importable, `env` set in the kernel's environment."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), *sys.path]), "OMP_NUM_THREADS": "1", **env}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    return nb


@pytest.mark.notebooks
def test_a_saved_notebook_keeps_the_finished_bar_not_a_frozen_zero(tmp_path):
    """A closed bar's saved output is its final line (3/3, 100%); a bar not kept leaves nothing."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipywidgets")
    nb = run_cells(["from pyramid_lib.progress import tqdm\n"
                    "for _ in tqdm(range(3), desc='kept'):\n    pass\n"
                    "for _ in tqdm(range(3), desc='gone', leave=False):\n    pass"], tmp_path)
    texts = [o["data"].get("text/plain", "") for o in nb.cells[0].outputs if o.output_type == "display_data"]
    assert len(texts) == 2, nb.cells[0].outputs
    assert texts[0].startswith("kept: 100%") and "3/3" in texts[0] and texts[1] == ""
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in nb.cells[0].outputs)
