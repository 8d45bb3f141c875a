"""Messages a user can follow (issue 14, part 4): every option that an error or hint names exists,
and the commands the CLI prints can be pasted back into a shell."""

from __future__ import annotations

import argparse
import ast
import json
import re
import shlex
from pathlib import Path

import pytest

from pyramid_lib import cli
from pyramid_lib.engine.run_dir import RunDir

LIBRARY = Path(cli.__file__).resolve().parent
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?![\w<{-])")  # not a pattern like --no-<name>
# Options of other programs that the library passes on (git, in experiments/sweep.git_commit).
# options of other programs the messages name: git's (status, ls-files, diff, log), convmv's, and the
# benchmarks' own scripts (benchmarks/regime.py, mvtec_regime.py: --pick writes a committed choice's pick)
NOT_OURS = {"--porcelain", "--untracked-files", "--error-unmatch", "--quiet", "--format", "--notest", "--pick"}


def parser_options() -> set[str]:
    found: set[str] = set()

    def walk(p: argparse.ArgumentParser):
        for a in p._actions:
            found.update(a.option_strings)
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    walk(sub)

    walk(cli.build_parser())
    return found


def named_options() -> dict[str, list[str]]:
    """Every `--option` in a string constant of the library (f-string parts included), with where."""
    where: dict[str, list[str]] = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for opt in OPTION.findall(node.value):
                    where.setdefault(opt, []).append(f"{path.relative_to(LIBRARY)}:{node.lineno}")
    return where


def test_every_option_named_in_a_message_exists():
    known = parser_options() | NOT_OURS
    named = named_options()
    assert "--heldout-fraction" in named and "--normal-class" in named  # the scan sees the messages
    missing = {opt: places for opt, places in named.items() if opt not in known}
    assert not missing, f"messages name options the command line does not have: {missing}"


# What `pyramid-ad predict` and `evaluate` run and can print (beyond the data loader's messages)
PREDICT_MODULES = ("engine/score_files.py", "engine/score_inputs.py", "engine/run_dir.py", "threshold.py", "files.py")


def command_options(name: str) -> set[str]:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {o for a in sub.choices[name]._actions for o in a.option_strings}


def test_advice_predict_prints_names_only_predicts_options_or_names_the_other_command():
    """A message predict (or evaluate) prints may name another command's option only together with
    that command (`pyramid-ad train ... --lr`): `pass a smaller --input-size`, printed by predict,
    named an option predict does not have."""
    known = command_options("predict") | command_options("evaluate")
    bad = []
    for rel in PREDICT_MODULES:
        tree = ast.parse((LIBRARY / rel).read_text())
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                for opt in OPTION.findall(node.value):
                    if opt not in known and "pyramid-ad " not in node.value:
                        bad.append(f"{rel}:{node.lineno} {opt}")
    assert bad == [], bad
    assert "--input-size" not in command_options("predict")  # what images_io's default advice names


def test_the_scan_catches_an_option_that_does_not_exist():
    assert "--val-fraction" not in parser_options()  # the option an earlier message advised
    assert OPTION.findall("lower --val-fraction or add images") == ["--val-fraction"]


@pytest.mark.parametrize("folder", ["runs/my run", "runs/it's here", "runs/plain"])
def test_printed_next_command_pastes_back(tmp_path, monkeypatch, capsys, folder):
    out = tmp_path / folder

    def fake_train(cfg, out_dir, **kw):
        run = RunDir(out_dir)
        run.dir.mkdir(parents=True)
        run.state.write_text(json.dumps({"status": "finished", "history": [{"epoch": 1, "loss": 0.5}]}))
        return run

    monkeypatch.setattr(cli, "train", fake_train)
    assert cli.main(["train", "--dataset", "mnist-sample", "--normal-class", "0", "--weights", "none",
                     "--out", str(out)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("next: "))
    argv = shlex.split(line[len("next: "):])
    assert argv == ["pyramid-ad", "evaluate", str(out)]
