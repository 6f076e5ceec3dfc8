"""Reading and stamping an exported `.mlpackage`: the `kolm.manifest` user-defined metadata, the
compression its MIL program shows per weight, and the weights themselves, dequantized by
coremltools' own constexpr ops.

The package is a folder: `Manifest.json`, the model spec (`Data/com.apple.CoreML/model.mlmodel`, a
protobuf holding the MIL program and its metadata) and `weights/weight.bin`. Stamping rewrites only
the spec, atomically; the weights file is never read for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from kolm.api import TierRecipe
from kolm.atomic import atomic_file
from kolm.errors import ArtifactError
from kolm.quiet import quiet

PACKAGE = "model.mlpackage"
MANIFEST_KEY = "kolm.manifest"
WEIGHT_THRESHOLD = 2048
"""coremltools compresses a const with at least this many elements (its `weight_threshold` default,
https://apple.github.io/coremltools/source/coremltools.optimize.coreml.config.html); norms stay fp16."""


def spec_file(package: Path) -> Path:
    """The model spec the package's Manifest.json names as its root model."""
    try:
        manifest = json.loads((package / "Manifest.json").read_text(encoding="utf-8"))
        root = manifest["itemInfoEntries"][manifest["rootModelIdentifier"]]["path"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{package}: not a readable .mlpackage Manifest.json ({exc})") from exc
    path = (package / "Data" / root).resolve()
    if package.resolve() not in path.parents:
        raise ArtifactError(f"{package}: Manifest.json names a model outside the package ({root})")
    return path


def load_spec(package: Path):
    with quiet("coremltools"):
        from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(spec_file(package).read_bytes())
    except Exception as exc:  # protobuf's DecodeError
        raise ArtifactError(f"{package}: the model spec does not parse ({exc})") from exc
    return spec


def metadata(package: Path) -> dict[str, str]:
    return dict(load_spec(package).description.metadata.userDefined)


def set_metadata(package: Path, key: str, value: str) -> None:
    """Set one user-defined metadata entry of the package's spec, atomically (weights untouched)."""
    spec = load_spec(package)
    spec.description.metadata.userDefined[key] = value
    with atomic_file(spec_file(package)) as partial:
        partial.write_bytes(spec.SerializeToString())


def program(package: Path):
    """The package's MIL program, loaded by coremltools (weights read from weight.bin)."""
    with quiet("coremltools"):
        from coremltools.converters.mil.frontend.milproto.load import load

    spec = load_spec(package)
    weights = spec_file(package).parent / "weights"
    try:
        with quiet("coremltools"):
            return load(spec, spec.specificationVersion, str(weights))
    except Exception as exc:  # a truncated weight.bin or a spec coremltools cannot read
        raise ArtifactError(f"{package}: coremltools cannot load its MIL program ({exc})") from exc


def weight_ops(prog) -> dict[str, object]:
    """The weight matrices of the program by their op's name: every constexpr (compressed) op and
    every plain 2-D const of at least WEIGHT_THRESHOLD elements that no constexpr op consumes."""
    ops = [op for function in prog.functions.values() for op in function.operations]
    consumed = {v.op.name for op in ops if op.op_type.startswith("constexpr_") for v in op.inputs.values()}
    found = {}
    for op in ops:
        if op.op_type.startswith("constexpr_"):
            found[op.name] = op
        elif op.op_type == "const" and op.name not in consumed and (val := op.outputs[0].val) is not None:
            if getattr(val, "ndim", 0) >= 2 and val.size >= WEIGHT_THRESHOLD:
                found[op.name] = op
    return found


def kind_of(op) -> str:
    """How one weight is stored: "fp16", "int4 block 32", "int8 per channel", "3-bit LUT group 32"."""
    from coremltools.converters.mil.mil import types

    if op.op_type == "const":
        return types.builtin_to_string(op.outputs[0].dtype)
    if op.op_type == "constexpr_blockwise_shift_scale":
        data, scale = op.data, op.scale
        block = data.shape[-1] // scale.shape[-1]
        where = "per channel" if scale.shape[-1] == 1 else f"block {block}"
        return f"{types.builtin_to_string(data.dtype)} {where}"
    if op.op_type == "constexpr_lut_to_dense":
        indices, lut = op.indices, op.lut
        group = indices.shape[0] // lut.shape[0]
        return f"{types.builtin_to_string(indices.dtype).removeprefix('uint')}-bit LUT group {group}"
    return op.op_type


def expected_kind(options: dict) -> str:
    """The kind (as `kind_of` names it) a recipe's options give every weight matrix."""
    if "nbits" in options:
        return f"{options['nbits']}-bit LUT group {options['group_size']}"
    if "dtype" in options:
        where = "per channel" if options["granularity"] == "per_channel" else f"block {options['block_size']}"
        return f"{options['dtype']} {where}"
    return "fp16"


def recipe_of(kinds: dict[str, str], recipes: list[tuple[str, TierRecipe]]) -> tuple[str, str] | None:
    """The (tier, recipe name), of `recipes`, whose options give every weight its kind; None when none does."""
    for tier, recipe in recipes:
        if kinds and all(kind == expected_kind(recipe.options) for kind in kinds.values()):
            return tier, recipe.name
    return None


def dense_weights(prog) -> dict[str, object]:
    """Every const of the program (norms included) by op name, compressed ones decompressed by
    coremltools' own `materialized_val_inference` of their constexpr op (float16 numpy arrays), and
    each linear layer's bias under its weight's name plus `:bias` (coremltools shares one const among
    equal biases, so a bias's own name may be another's)."""
    found = {}
    for function in prog.functions.values():
        for op in function.operations:
            if op.op_type.startswith("constexpr_"):
                found[op.name] = op.materialized_val_inference()
            elif op.op_type == "const" and (val := op.outputs[0].val) is not None and getattr(val, "ndim", 0) >= 1:
                found[op.name] = val
            elif op.op_type == "linear" and op.bias is not None and op.bias.op.op_type == "const":
                found[f"{op.weight.op.name}:bias"] = op.bias.val
    return found
