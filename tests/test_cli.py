import subprocess
import sys

import pytest

from pyramid_lib.cli import build_parser, main


@pytest.mark.parametrize("cmd,words", [("demo", "writes"), ("train", "checkpoint.pt"), ("evaluate", "metrics.csv"),
                                       ("reproduce", "comparison.csv")])
def test_help_says_what_each_command_writes(cmd, words, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([cmd, "--help"])
    assert e.value.code == 0
    assert words in capsys.readouterr().out


@pytest.mark.slow  # starts a Python that imports the kit (5-8 s): the full gate runs it
def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "pyramid_lib", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "reproduce" in r.stdout


@pytest.mark.parametrize("argv,needle", [
    (["train", "--dataset", "imagenet", "--out", "x"], "--dataset"),
    (["train", "--dataset", "mnist", "--normal-class", "0", "--out", "x", "--epochs", "-3"], "--epochs"),
    (["train", "--dataset", "mnist", "--normal-class", "0", "--out", "x", "--lambda", "one"], "--lambda"),
    (["train", "--dataset", "mnist", "--normal-class", "12", "--out", "x", "--no-download"], "--normal-class"),
])
def test_bad_arguments_fail_in_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv + ["--data-root", str(tmp_path / "data")])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code != 0 and needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "data").exists()
