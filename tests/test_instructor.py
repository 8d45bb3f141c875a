"""The instructor layer: learning objectives in every notebook, model answers to every question
(instructor/ANSWERS.md), the gradable tasks (instructor/tasks/), slide figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_objectives_and_prerequisites_follow_the_title(path):
    title, objectives = cells(path)[:2]
    assert title["cell_type"] == "markdown" and text(title).startswith(f"# {path.stem[:2]} - ")
    body = text(objectives)
    assert objectives["cell_type"] == "markdown" and body.startswith("**Learning objectives.**"), body[:80]
    assert "**Prerequisites.**" in body
    assert len(re.findall(r"^\* ", body, re.M)) >= 3, "at least three objectives, one per bullet"
    earlier = [int(n) for n in re.findall(r"\b0(\d)\b", body.split("**Prerequisites.**")[1])]
    assert all(n < int(path.stem[:2]) for n in earlier), "a prerequisite notebook comes before this one"
