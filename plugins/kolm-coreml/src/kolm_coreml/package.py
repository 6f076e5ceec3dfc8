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
from typing import NamedTuple

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


class Weights(NamedTuple):
    """A package's weights as coremltools' MIL loader reads them (`weights`)."""

    ops: list
    """Its const and constexpr ops (coremltools `Operation`s), in program order."""
    biases: dict[str, str]
    """Each linear layer's weight variable -> its bias variable (coremltools shares one const among
    equal biases, so a bias's own name may be another layer's)."""


def weights(package: Path) -> Weights:
    """The package's weights, loaded by coremltools' own MIL loader (weight.bin read, compressed
    weights as constexpr ops) from a copy of the program that keeps only the weights' ops: the full
    program's other ops are not needed, and their type inference is most of a full load (SmolLM2's
    package: 7.0 s in full, 1.6 s this way, the same arrays; 2026-11-30)."""
    with quiet("coremltools"):
        from coremltools.converters.mil.frontend.milproto.load import load

    spec = load_spec(package)
    biases = {}
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                weight, bias = op.inputs.get("weight"), op.inputs.get("bias")
                if op.type == "linear" and weight and bias and weight.arguments and bias.arguments:
                    biases[weight.arguments[0].name] = bias.arguments[0].name
            kept = [op for op in block.operations if op.type == "const" or op.type.startswith("constexpr_")]
            named = [out.name for op in kept for out in op.outputs]
            if not named:
                raise ArtifactError(f"{package}: its program holds no weights")
            del block.operations[:]
            block.operations.extend(kept)
            del block.outputs[:]  # the function's outputs come from ops left out: any kept var will do
            block.outputs.append(named[0])
    folder = spec_file(package).parent / "weights"
    try:
        with quiet("coremltools"):
            prog = load(spec, spec.specificationVersion, str(folder))
    except Exception as exc:  # a truncated weight.bin or a spec coremltools cannot read
        raise ArtifactError(f"{package}: coremltools cannot load its weights ({exc})") from exc
    return Weights([op for f in prog.functions.values() for op in f.operations], biases)


def weight_ops(found: Weights) -> dict[str, object]:
    """The weight matrices by their op's name: every constexpr (compressed) op and every plain 2-D
    const of at least WEIGHT_THRESHOLD elements that no constexpr op consumes."""
    consumed = {v.op.name for op in found.ops if op.op_type.startswith("constexpr_") for v in op.inputs.values()}
    matrices = {}
    for op in found.ops:
        if op.op_type.startswith("constexpr_"):
            matrices[op.name] = op
        elif op.op_type == "const" and op.name not in consumed and (val := op.outputs[0].val) is not None:
            if getattr(val, "ndim", 0) >= 2 and val.size >= WEIGHT_THRESHOLD:
                matrices[op.name] = op
    return matrices


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


def dense_weights(found: Weights) -> dict[str, object]:
    """Every const (norms included) by op name, compressed ones decompressed by coremltools' own
    `materialized_val_inference` of their constexpr op (float16 numpy arrays), and each linear
    layer's bias under its weight's op name plus `:bias`."""
    dense = {}
    for op in found.ops:
        if op.op_type.startswith("constexpr_"):
            dense[op.name] = op.materialized_val_inference()
        elif op.op_type == "const" and (val := op.outputs[0].val) is not None and getattr(val, "ndim", 0) >= 1:
            dense[op.name] = val
    by_var = {op.outputs[0].name: op for op in found.ops}
    for weight, bias in found.biases.items():
        if weight in by_var and bias in by_var and by_var[bias].op_type == "const":
            dense[f"{by_var[weight].name}:bias"] = by_var[bias].outputs[0].val
    return dense
