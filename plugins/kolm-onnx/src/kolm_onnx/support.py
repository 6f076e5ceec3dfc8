"""Which models onnxruntime-genai's model builder converts, read from the installed builder itself
without importing it: `onnxruntime_genai/models/builder.py` chooses a model class by comparing
`config.architectures[0]` with each architecture it supports. A few architectures it names still
fail to build; those are listed by builder version, as found by converting a tiny model of each
family (tests/test_families.py)."""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from importlib.metadata import version
from pathlib import Path

from kolm.api import ModelSpec

# (builder version, architecture) -> why that builder fails on it although it names it.
BUILDER_GAPS = {
    ("0.18.0", "Gemma3ForCausalLM"): "onnxruntime-genai 0.18.0's model builder fails on Gemma3ForCausalLM: "
    "it reads rope_parameters as one dict, transformers 5 gives Gemma 3 one per layer type (KeyError: 'rope_type')",
}


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
    """Why the builder will refuse `spec`: an architecture it does not name, or one it fails on. None
    when it can, or when onnxruntime-genai is not installed here (the export then names the install)."""
    known = builder_architectures()
    if known is None:
        return None
    if spec.arch not in known:
        return f"onnxruntime-genai's model builder does not build {spec.arch}"
    return BUILDER_GAPS.get((version("onnxruntime-genai"), spec.arch))
