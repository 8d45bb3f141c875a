"""`notebooks/execute.py run` shows the running cell's own progress in the terminal: the library's
bars write their line to $PYRAMID_PROGRESS_FILE (set by `run` for the kernel), and `run` shows
the latest line under papermill's bar of cells."""

import time
from pathlib import Path

import nbformat
import pytest

from pyramid_lib import progress
from tests.test_notebook_sentences import REPO, execute


def test_the_variable_names_agree():
    assert execute.PROGRESS_FILE_ENV == progress.PROGRESS_FILE_ENV


def test_a_bar_writes_its_line_where_the_variable_says(tmp_path, monkeypatch):
    line = tmp_path / "progress.txt"
    monkeypatch.setenv(progress.PROGRESS_FILE_ENV, str(line))
    for _ in progress.tqdm(range(3), desc="mvtec:bottle", unit="epoch"):
        pass
    text = line.read_text()
    assert text.startswith("mvtec:bottle: 100%") and "3/3" in text and "epoch" in text
    monkeypatch.delenv(progress.PROGRESS_FILE_ENV)
    for _ in progress.tqdm(range(2), desc="other"):
        pass
    assert line.read_text() == text  # without the variable nothing is written


def test_the_terminal_line_follows_the_file(tmp_path, capsys):
    f = tmp_path / "progress.txt"
    with execute.CellProgress(f, every=0.05) as shown:
        f.write_text("mvtec:bottle:  40%|####      | 4/10 [02:00<03:00, 30.0s/epoch]")
        time.sleep(0.3)
        assert shown.seen.startswith("mvtec:bottle:  40%")
        f.write_text("mvtec:bottle: 100%|##########| 10/10 [05:00<00:00, 30.0s/epoch]")
    assert shown.seen.startswith("mvtec:bottle: 100%")
    assert "cell: mvtec:bottle:  40%" in capsys.readouterr().err


@pytest.mark.notebooks
def test_run_shows_the_cells_own_bar_while_the_notebook_runs(tmp_path, capfd, monkeypatch):
    """A real kernel: a cell whose bar advances every 0.4 s; the terminal shows its epochs."""
    pytest.importorskip("papermill")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    nb = tmp_path / "01_bar.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import time\nfrom pyramid_lib.progress import tqdm\n"
        "for _ in tqdm(range(8), desc='training', unit='epoch'):\n    time.sleep(0.4)")]), nb)
    assert execute.run(tmp_path / "out", [Path(nb)], {}) == 0
    err = capfd.readouterr().err
    assert "cell: training:" in err and "epoch" in err, err[-2000:]
