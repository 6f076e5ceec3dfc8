"""The size forecast of a kolm-tensorrt-edge export, tensor by tensor, without importing the
toolchain (TensorRT Edge-LLM 0.11.0's ONNX export, read back from its output on random Llamas of 2
and 4 layers and on SmolLM2-135M).

`model.onnx.data` holds the layers and `lm_head` (a tied model's embedding a second time), all
float16 but the quantized projections (every 2-D `*proj.weight` of a layer, rows N = out, columns
K = in):
- int4 AWQ: Edge-LLM's fragment layout, ceil(N/128) x ceil(K/64) x 8 rows of 512 bytes (two int4 a
  byte, N padded to 128); float16 scales per group of 128 columns; a float16 `pre_quant_scale` per
  input column of every projection;
- int8 SmoothQuant: int8 weights, a float32 scale per row; a float16 `pre_quant_scale` per input
  column once per input (q/k/v share one, gate/up share one).
`embedding.safetensors` holds the input embedding in float16 (one row gathered per token). The
graph proto (`model.onnx`) grows per layer by what the export measured (below); Edge-LLM's
`config.json`, the tokenizer files (its `tokenizer_config.json` less the chat template, which it
writes to `chat_template.jinja`) and kolm's scripts are counted as they are.
"""

from __future__ import annotations

import json
import math

from kolm.api import Flags, ModelSpec, SizeForecast

from kolm_tensorrt_edge.device_scripts import scripts_bytes
from kolm_tensorrt_edge.export import TOKENIZER_FILES

GRAPH_BYTES = {
    "none": (20337, 33674),
    "W4A16_AWQ": (20284, 57433),
    "W8A8_SQ_PER_CHANNEL": (20333, 91706),
}
"""(Fixed, per layer) bytes of `model.onnx` by quantization: Edge-LLM 0.11.0's exports of a random
Llama 256 wide with 2 and 4 layers (fp16 87,685 / 155,033; int4 135,150 / 250,016; int8 203,745 /
387,157 B). SmolLM2-135M's 30 layers at fp16 measured 1,061,992 B (this rule: 1,030,557)."""
CONFIG_BYTES = 741  # Edge-LLM's config.json for SmolLM2-135M (736 for the random Llama)
SHARED_INPUT = ("k_proj.weight", "v_proj.weight", "up_proj.weight")  # take q_proj's / gate_proj's input


def projection_bytes(name: str, rows: int, cols: int, options: Flags) -> int:
    """What the ONNX weights file holds for one projection of `rows` x `cols`."""
    algo = options.get("quant_algo")
    if algo == "W4A16_AWQ":
        fragments = math.ceil(rows / 128) * math.ceil(cols / 64) * 8 * 512
        return fragments + (cols // int(options["group_size"])) * rows * 2 + cols * 2
    if algo == "W8A8_SQ_PER_CHANNEL":
        return rows * cols + rows * 4 + (0 if name.endswith(SHARED_INPUT) else cols * 2)
    return rows * cols * 2


def embedding_file_bytes(vocab: int, hidden: int) -> int:
    """embedding.safetensors: one float16 tensor `embedding` and its 8-aligned JSON header."""
    header = {"embedding": {"dtype": "F16", "shape": [vocab, hidden], "data_offsets": [0, vocab * hidden * 2]}}
    encoded = len(json.dumps(header, separators=(",", ":")))
    return 8 + encoded + (-encoded % 8) + vocab * hidden * 2


def side_bytes(spec: ModelSpec) -> int:
    """The tokenizer files as Edge-LLM leaves them, and chat_template.jinja."""
    total = 0
    for name in TOKENIZER_FILES:
        raw = spec.read_model_file(name)
        if raw is None:
            continue
        total += len(raw)
        if name == "tokenizer_config.json" and (template := json.loads(raw).get("chat_template")):
            moved = len(json.dumps({"chat_template": template}, indent=2)) - 2
            total += len(template.encode()) - moved
    return total


def tensorrt_edge_size(spec: ModelSpec, tier: str, options: Flags) -> SizeForecast:
    """Bytes of the folder kolm-tensorrt-edge writes for `spec` with a tier recipe's options."""
    weights = read = 0
    embedding = lm_head = None
    for t in spec.inventory.tensors:
        if "embed_tokens." in t.name:
            embedding = t
            continue
        if t.name.startswith("lm_head."):
            lm_head = t
        if options and len(t.shape) == 2 and t.name.endswith("proj.weight"):
            size = projection_bytes(t.name, *t.shape, options)
        else:
            size = t.numel * 2
        weights += size
        read += size
    vocab, hidden = embedding.shape if embedding else (0, 0)
    if lm_head is None and embedding is not None:  # tied: the exporter writes lm_head from the embedding
        weights += vocab * hidden * 2
        read += vocab * hidden * 2
    layers = int(spec.config.get("num_hidden_layers", 0))
    fixed, per_layer = GRAPH_BYTES[options.get("quant_algo", "none")]
    graph = fixed + per_layer * layers + len(spec.embedded_manifest(tier).encode()) + 20
    total = weights + embedding_file_bytes(vocab, hidden) + graph + CONFIG_BYTES + side_bytes(spec) + scripts_bytes()
    kind = {
        "W4A16_AWQ": "int4 AWQ in Edge-LLM's fragment layout, float16 scales per 128",
        "W8A8_SQ_PER_CHANNEL": "int8 SmoothQuant, a float32 scale per row",
    }
    return SizeForecast(
        bytes=total,
        read_per_token_bytes=read,
        method=f"TensorRT Edge-LLM ONNX rule ({kind.get(options.get('quant_algo'), 'float16')}; lm_head and "
        "embedding float16; graph bytes per layer as measured on its exports)",
    )
