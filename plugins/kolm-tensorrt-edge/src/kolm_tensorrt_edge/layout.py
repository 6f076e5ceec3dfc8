"""The files of a kolm-tensorrt-edge export: the folder TensorRT Edge-LLM's exporter writes for the
language model (`llm/`: `model.onnx` with its weights in `model.onnx.data`, `embedding.safetensors`,
its own `config.json`, the tokenizer files and `chat_template.jinja`), which `llm_build` takes as
`--onnxDir`, plus kolm's `build.sh`, `run.sh` and `input.json` for the Jetson.

The RS-1 manifest is a `metadata_props` entry of `model.onnx` (TensorRT's ONNX parser ignores
metadata); stamping rewrites only the small graph proto, never the weights file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kolm.atomic import atomic_file
from kolm.errors import ArtifactError

GRAPH, WEIGHTS = "model.onnx", "model.onnx.data"  # the payload's first two files
MANIFEST_KEY = "kolm.manifest"
INT4_GEMM = "Int4GroupwiseGemmPluginV2"  # Edge-LLM's custom op for int4 AWQ projections


def load_graph(path: Path):
    """The ONNX graph proto at `path` without its external weights, or one line why it is not one."""
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError for a corrupt file
        raise ArtifactError(f"{path.name}: not a readable ONNX graph ({type(exc).__name__})") from exc


def set_manifest(graph: Path, manifest_json: str) -> None:
    """Stamp the manifest into the graph's metadata, replacing the file only once fully written."""
    import onnx

    model = load_graph(graph)
    kept = [p for p in model.metadata_props if p.key != MANIFEST_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=MANIFEST_KEY, value=manifest_json)
    with atomic_file(graph) as part:
        onnx.save_model(model, str(part))


def read_graph(graph: Path) -> tuple[str | None, str, Counter]:
    """(The manifest stamped in the graph, the quantization its ops and weights show: `W4A16_AWQ`
    for Edge-LLM's int4 GEMM, `W8A8_SQ_PER_CHANNEL` for int8 weights behind QuantizeLinear, else
    `none`, and the count of initializer types)."""
    import onnx

    model = load_graph(graph)
    ops = {node.op_type for node in model.graph.node}
    types = Counter(onnx.TensorProto.DataType.Name(t.data_type) for t in model.graph.initializer)
    if INT4_GEMM in ops:
        algo = "W4A16_AWQ"
    elif "QuantizeLinear" in ops and types["INT8"]:
        algo = "W8A8_SQ_PER_CHANNEL"
    else:
        algo = "none"
    manifest = next((p.value for p in model.metadata_props if p.key == MANIFEST_KEY), None)
    return manifest, algo, types
