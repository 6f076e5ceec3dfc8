"""Reading and stamping the exported ONNX graph: the `kolm.manifest` metadata prop and the recipe its
MatMul nodes show.

The weights live in `model.onnx.data` (external data); only the small graph proto is loaded and
rewritten, so stamping a manifest never reads the weights into memory.
"""

from __future__ import annotations

from pathlib import Path

from kolm.api import TierRecipe
from kolm.atomic import atomic_file
from kolm.errors import ArtifactError

from kolm_onnx.quant_plan import accuracy_level, layer_of, matmul_bits

MANIFEST_KEY = "kolm.manifest"


def load_graph(path: Path):
    """The graph proto of the ONNX file at `path` (weights left in their external file); a file that
    does not parse as one raises `ArtifactError`."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        return onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArtifactError(f"{path.name}: not a readable ONNX graph ({reason})") from exc


def set_metadata(path: Path, key: str, value: str) -> None:
    """Set one `metadata_props` entry of the ONNX file at `path`, atomically (external data untouched)."""
    import onnx

    model = load_graph(path)
    kept = [p for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=key, value=value)
    with atomic_file(path) as partial:
        onnx.save_model(model, str(partial))


def metadata(path: Path) -> dict[str, str]:
    """The graph's `metadata_props`; one that is not text (a damaged file) raises `ArtifactError`."""
    props = {p.key: p.value for p in load_graph(path).metadata_props}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in props.items()):
        raise ArtifactError(f"{path.name}: a metadata_props entry is not UTF-8 text (a damaged graph)")
    return props


def weight_matmuls(path: Path) -> dict[str, str]:
    """Each weight MatMul of the graph, by node name, and its kind: "MatMulNBits bits=4 block=32
    accuracy=4" or "MatMul float32"."""
    import onnx
    from onnx import helper

    model = load_graph(path)
    types = {t.name: t.data_type for t in model.graph.initializer}
    kinds = {}
    for node in model.graph.node:
        try:  # a damaged graph may hold names that are not text, missing inputs, unknown types
            if not isinstance(node.name, str):
                raise TypeError(f"a node named {node.name[:40]!r}")
            if node.op_type == "MatMulNBits":
                attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
                kinds[node.name] = (
                    f"MatMulNBits bits={attrs.get('bits')} block={attrs.get('block_size')} "
                    f"accuracy={attrs.get('accuracy_level', 0)}"
                )
            elif node.op_type == "MatMul" and node.input[1] in types:
                kinds[node.name] = f"MatMul {onnx.helper.tensor_dtype_to_np_dtype(types[node.input[1]])}"
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{path.name}: a malformed ONNX graph ({exc})") from exc
    return kinds


def expected_kind(node: str, layers: int, options: dict) -> str:
    """The kind (as `weight_matmuls` names it) a recipe's options give the MatMul `node`."""
    if "bits" not in options:
        return "MatMul float32"
    bits = matmul_bits(node, layers, options)
    return f"MatMulNBits bits={bits} block={options['block_size']} accuracy={accuracy_level(options)}"


def recipe_of(kinds: dict[str, str], recipes: list[tuple[str, TierRecipe]]) -> tuple[str, str] | None:
    """The (tier, recipe name), of `recipes` (`Backend.recipes()`), whose rule gives every weight
    MatMul of the graph its kind; None when none does."""
    layers = len({layer for node in kinds if (layer := layer_of(node)) is not None})
    for tier, recipe in recipes:
        if kinds and all(kind == expected_kind(node, layers, recipe.options) for node, kind in kinds.items()):
            return tier, recipe.name
    return None
