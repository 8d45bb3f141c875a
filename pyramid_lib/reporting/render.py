"""The pages' Jinja2 templates (templates/): the environment, `render`, and the blank-line tidy every page gets."""

from __future__ import annotations

import jinja2


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("pyramid_lib.reporting", "templates"),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, autoescape=False)


def render(template: str, **context) -> str:
    """A template of templates/ with `context`; runs of blank lines collapsed to one."""
    return tidy(environment().get_template(template).render(**context))


def tidy(text: str) -> str:
    lines, out = text.strip("\n").split("\n"), []
    for line in lines:
        if line.strip() or (out and out[-1].strip()):
            out.append(line.rstrip())
    return "\n".join(out).strip("\n") + "\n"
