"""Reading and stamping the exported ONNX graph: the `kolm.manifest` metadata prop, the tier its
MatMul nodes show, and the ORT-format copy for ONNX Runtime Mobile.

The weights live in `model.onnx.data` (external data); only the small graph proto is loaded and
rewritten, so stamping a manifest never reads the weights into memory.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

MANIFEST_KEY = "kolm.manifest"
ORT_FILE = "model.ort"


def load_graph(path: Path):
    import onnx

    return onnx.load(str(path), load_external_data=False)


def set_metadata(path: Path, key: str, value: str) -> None:
    """Set one `metadata_props` entry of the ONNX file at `path`, atomically (external data untouched)."""
    import onnx

    model = load_graph(path)
    kept = [p for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=key, value=value)
    partial = path.with_name(f".{path.name}.part")
    try:
        onnx.save_model(model, str(partial))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in load_graph(path).metadata_props}


def matmul_kinds(path: Path) -> Counter:
    """How many weight MatMuls of each kind the graph holds: "MatMulNBits bits=4 block=32" or "MatMul fp32"."""
    import onnx
    from onnx import helper

    model = load_graph(path)
    types = {t.name: t.data_type for t in model.graph.initializer}
    kinds: Counter = Counter()
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            kinds[f"MatMulNBits bits={attrs.get('bits')} block={attrs.get('block_size')}"] += 1
        elif node.op_type == "MatMul" and node.input[1] in types:
            kinds[f"MatMul {onnx.helper.tensor_dtype_to_np_dtype(types[node.input[1]])}"] += 1
    return kinds


def matmul_kind(options: dict) -> str:
    """The weight MatMul kind (as `matmul_kinds` names it) a tier recipe's options make."""
    return (
        f"MatMulNBits bits={options['bits']} block={options['block_size']}" if "bits" in options else "MatMul float32"
    )


def tier_of(kinds: Counter, recipes: dict[str, dict]) -> str | None:
    """The tier (of `recipes`, tier -> options) a graph's weight MatMuls show; None if mixed or unknown."""
    if len(kinds) != 1:
        return None
    kind = next(iter(kinds))
    return next((tier for tier, options in recipes.items() if matmul_kind(options) == kind), None)


def write_ort(onnx_path: Path, ort_path: Path) -> None:
    """Re-serialise `onnx_path` in the ORT format ONNX Runtime Mobile loads, with graph optimizations
    off so no x86-specific fusion is baked in (the device optimizes at load), atomically."""
    import onnxruntime as ort

    partial = ort_path.with_name(f".{ort_path.name}.part")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.optimized_model_filepath = str(partial)
    options.add_session_config_entry("session.save_model_format", "ORT")
    try:
        ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        os.replace(partial, ort_path)
    finally:
        partial.unlink(missing_ok=True)
