"""`pyramid-ad report` rebuilds the committed results CSVs and pages byte for byte (the pages carry no
date and nothing about the machine that built them); reporting is imported by nothing in the
library but the CLI."""

from __future__ import annotations

import ast
import shutil

import pytest
from helpers import REPO

from pyramid_lib.reporting.pages import build_report


@pytest.mark.slow
def test_report_rebuilds_the_committed_csvs_and_pages_byte_for_byte(tmp_path):
    results = REPO / "results"
    if not (results / "README.md").is_file():
        pytest.skip("no committed results/ in this checkout")
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    for page in copy.rglob("README.md"):  # rebuilt from the run folders, not copied through
        page.unlink()
    build_report(copy)
    files = sorted(p.relative_to(results) for p in results.rglob("*") if p.suffix in (".csv", ".md"))
    pages = [p for p in files if p.name == "README.md"]
    assert len(pages) >= 2, "no committed page"
    changed = [str(p) for p in files
               if not (copy / p).is_file() or (copy / p).read_bytes() != (results / p).read_bytes()]
    assert not changed, f"differ from a rebuild (run `pyramid-ad report`): {changed[:10]}"


def test_only_the_cli_imports_reporting():
    importers = []
    for path in (REPO / "pyramid_lib").rglob("*.py"):
        if "reporting" in path.relative_to(REPO / "pyramid_lib").parts or path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] + [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else []
            if any("reporting" in n for n in names):
                importers.append(str(path))
    assert not importers
