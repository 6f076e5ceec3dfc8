"""Which models onnxruntime-genai's model builder converts, read from the installed builder itself
without importing it: `onnxruntime_genai/models/builder.py` chooses a model class by comparing
`config.architectures[0]` with each architecture it supports."""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

from kolm.api import ModelSpec


@cache
def builder_architectures() -> frozenset[str] | None:
    """The architectures `config.architectures[0] == "..."` names in the installed builder, or None."""
    spec = importlib.util.find_spec("onnxruntime_genai")
    if spec is None or not spec.submodule_search_locations:
        return None
    builder = Path(spec.submodule_search_locations[0]) / "models" / "builder.py"
    found = set()
    for node in ast.walk(ast.parse(builder.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare) and "architectures" in ast.unparse(node.left):
            found |= {c.value for c in node.comparators if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return frozenset(found)


def cannot_build(spec: ModelSpec) -> str | None:
    """Why the builder will refuse `spec`: an architecture it does not name. None when it can, or
    when onnxruntime-genai is not installed here (the export then names the install)."""
    known = builder_architectures()
    if known is None or spec.arch in known:
        return None
    return f"onnxruntime-genai's model builder does not build {spec.arch}"
