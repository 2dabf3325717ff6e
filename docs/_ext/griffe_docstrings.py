"""Griffe extension for aalearn's docs build: adapt the docstrings' conventions to Markdown.

aalearn's docstrings are Google style with a singular ``Example:`` heading (which griffe would
render as an admonition of Markdown text, so doctest output such as ``[60, 20, 20]`` would be read
as a link) and Sphinx roles (``:func:`x```, ``:math:`x```). Only the rendered text changes; the
source is untouched. Loaded by ``mkdocs.yml`` (``extensions:`` of the python handler).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc|const|math|ref|doc):`~?([^`]+)`")


def _math_blocks(text: str) -> str:
    """Turn each reST ``.. math::`` directive (content on its line and/or indented below) into a
    fenced ``latex`` code block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip().startswith(".. math::"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        first = line.strip()[len(".. math::") :].strip()
        body: list[str] = [indent + "    " + first] if first else []
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        width = (
            min(len(b) - len(b.lstrip()) for b in body if b.strip()) if any(b.strip() for b in body) else 0
        )
        out += [f"{indent}```latex", *(indent + b[width:] for b in body if b.strip()), f"{indent}```", ""]
    return "\n".join(out)


def rewrite(text: str) -> str:
    """Return ``text`` with ``Example:`` as ``Examples:``, Sphinx roles as inline code and reST
    ``.. math::`` blocks as fenced LaTeX (no MathJax: the site loads no external script).

    Example:
        >>> rewrite("See :func:`~aalearn.x.f`.\\n\\nExample:\\n    >>> 1\\n")
        'See `aalearn.x.f`.\\n\\nExamples:\\n    >>> 1\\n'
    """
    return _ROLE.sub(lambda m: f"`{m.group(1)}`", _EXAMPLE.sub(r"\1Examples:", _math_blocks(text)))


class AalearnDocstrings(griffe.Extension):
    """Rewrite each object's docstring with :func:`rewrite` when griffe creates it."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
