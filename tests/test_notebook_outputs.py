"""What the executed notebooks printed: no error and no warning on stderr in any cell.

`make test-notebooks` executes copies of the notebooks with nbmake (`--overwrite`: the outputs
are written into the copies, build/nbmake/*.ipynb), then runs this file, which reads them.  A
notebook whose copy is missing, or whose copy's code differs from notebooks/ (an older run), is
skipped: a plain `pytest` checks nothing it did not just execute.
"""

import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
EXECUTED = REPO / "build" / "nbmake"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WARNING = re.compile(r"warn", re.I)  # UserWarning, FutureWarning, "warnings.warn(", "WARNING: ..."

pytestmark = pytest.mark.notebooks


def problems(nb) -> list[str]:
    """One line per code cell output that is an error, or stderr text that mentions a warning:
    'cell <n> (execution <count>): <first line>'."""
    found = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    for n, cell in enumerate(code, start=1):
        for out in cell.get("outputs", []):
            where = f"code cell {n} (execution count {cell.get('execution_count')})"
            if out.output_type == "error":
                found.append(f"{where}: {out.ename}: {out.evalue.splitlines()[0] if out.evalue else ''}")
            elif out.output_type == "stream" and out.name == "stderr" and WARNING.search(out.text):
                line = next(ln for ln in out.text.splitlines() if WARNING.search(ln))
                found.append(f"{where}: stderr: {line.strip()[:200]}")
    return found


def executed_copy(path: Path):
    """The executed copy of notebook `path` (nbformat), or a pytest.skip saying why there is none."""
    copy = EXECUTED / path.name
    if not copy.is_file():
        pytest.skip(f"{copy} not found: `make test-notebooks` executes the notebooks there")
    nb = nbformat.read(copy, as_version=4)
    source = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    if [c.source for c in nb.cells if c.cell_type == "code"] != source:
        pytest.skip(f"{copy} was executed from an older {path.name}: run `make test-notebooks`")
    if not any(c.get("execution_count") for c in nb.cells if c.cell_type == "code"):
        pytest.fail(f"{copy}: no cell was executed")
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_error_and_no_warning_in_the_executed_outputs(path):
    found = problems(executed_copy(path))
    assert not found, f"{path.name}, executed in {EXECUTED}:\n" + "\n".join(found)


def test_the_check_finds_a_warning_and_an_error():
    """The check itself, on a hand-made executed notebook: a warning on stderr and an error are
    reported with their cell; stdout that says 'warning' and a clean stderr line are not."""
    ok = nbformat.v4.new_code_cell("print(1)", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="no warnings here\n"),
        nbformat.v4.new_output("stream", name="stderr", text="epoch 1/8: 100%|####| 3/3\n")])
    warned = nbformat.v4.new_code_cell("f()", execution_count=2, outputs=[
        nbformat.v4.new_output("stream", name="stderr",
                               text="/x.py:3: UserWarning: The palette list has more values (2) than needed\n")])
    failed = nbformat.v4.new_code_cell("g()", execution_count=3, outputs=[
        nbformat.v4.new_output("error", ename="ValueError", evalue="bad\nmore", traceback=[])])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), ok, warned, failed])
    found = problems(nb)
    assert len(found) == 2
    assert found[0].startswith("code cell 2 (execution count 2): stderr: /x.py:3: UserWarning")
    assert found[1] == "code cell 3 (execution count 3): ValueError: bad"
