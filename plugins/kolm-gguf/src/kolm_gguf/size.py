"""The GGUF size forecast: llama.cpp's per-tensor type choice applied to a tensor inventory, plus
the GGUF metadata the export writes (counted from the tokenizer when the model has one)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from kolm.api import ModelSpec, SizeForecast
from kolm.errors import UnsupportedModelError
from kolm.inventory import routed_share

from kolm_gguf import quant_plan
from kolm_gguf.names import expert_name, gguf_name

# Metadata keys besides the tokenizer (architecture, hyper-parameters, file type, manifest):
# measured on SmolLM2-135M exports at ~0.5 KB, plus the kolm.manifest JSON (~1.5 KB).
FIXED_METADATA_BYTES = 2_048
# Without a tokenizer (a base name), each token string and merge is counted at this many
# bytes besides its 8-byte length prefix: SmolLM2's tokenizer averages 5.9 per token and 9.8
# per merge; Llama 3's 6.6 and 10.9.
MEAN_TOKEN_BYTES, MEAN_MERGE_BYTES = 6.5, 10.5
# Families whose published checkpoints carry a SentencePiece tokenizer.model (pieces with scores,
# no merges); Gemma 3 270M's GGUF averages 8.8 bytes over its 262,144 pieces.
SENTENCEPIECE_ARCHS = {"MistralForCausalLM", "Phi3ForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM"}
MEAN_PIECE_BYTES = 8.8

# Hugging Face architecture -> the GGUF architecture llama.cpp's converter writes (its
# conversion/__init__.py registry), for the families kolm.inventory derives tensors for.
GGUF_ARCH = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3moe",
    "Phi3ForCausalLM": "phi3",
    "Gemma2ForCausalLM": "gemma2",
    "Gemma3ForCausalLM": "gemma3",
}


def gguf_arch(spec: ModelSpec) -> str:
    """The GGUF architecture `spec` converts to; refuses a family kolm does not know the tensors of."""
    if spec.arch not in GGUF_ARCH:
        raise UnsupportedModelError(f"kolm does not know the GGUF tensors of {spec.arch}")
    return GGUF_ARCH[spec.arch]


def gguf_tensors(spec: ModelSpec) -> list[tuple[str, tuple[int, ...], str]]:
    """(GGUF name, GGUF-order shape, source type) of every tensor the F16 GGUF holds."""
    arch = gguf_arch(spec)
    out = []
    experts: dict[str, list[int]] = {}  # stacked expert tensor -> its GGUF shape, filled expert by expert
    for t in spec.inventory.tensors:
        if t.name == "lm_head.weight" and (spec.tied_embeddings or arch == "gemma2"):
            continue  # Gemma 2's converter drops lm_head: llama.cpp always ties its output
        stacked = expert_name(t.name)
        if stacked:
            name, index = stacked
            if name not in experts:
                experts[name] = [*reversed(t.shape), 0]
                out.append((name, experts[name], converted_type(name, t.shape)))
            experts[name][-1] = max(experts[name][-1], index + 1)
            continue
        name = gguf_name(t.name, arch)
        if name is None:
            if t.name.endswith("rotary_emb.inv_freq"):
                continue
            raise UnsupportedModelError(f"tensor {t.name} has no GGUF equivalent for {spec.arch}")
        shape = tuple(reversed(t.shape))
        if name == "token_embd.weight" and arch == "gemma3":
            shape = (shape[0], min(shape[1], tokenizer_vocab(spec) or shape[1]))  # rows past the vocabulary go
        out.append((name, shape, converted_type(name, shape)))
    return _rope_tensors(spec.config) + [(name, tuple(shape), kind) for name, shape, kind in out]


def converted_type(name: str, shape: tuple[int, ...]) -> str:
    """The type llama.cpp's converter writes a tensor in at --outtype f16: F32 for 1-D tensors, norms
    and a mixture of experts' router (conversion/base.py, "Some tensor types are always in
    float32"), F16 for the rest."""
    return "F32" if len(shape) <= 1 or name.endswith(("_norm.weight", "ffn_gate_inp.weight")) else "F16"


def _rope_tensors(config: dict) -> list[tuple[str, tuple[int, ...], str]]:
    """The rope frequency tensors the converter adds for Llama 3 and Phi-3 long-context scaling."""
    scaling = config.get("rope_scaling") or {}
    kind = scaling.get("rope_type") or scaling.get("type")
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    if kind == "llama3":
        return [("rope_freqs.weight", (head_dim // 2,), "F32")]
    if kind in ("longrope", "su") and scaling.get("long_factor"):
        return [(f"rope_factors_{k}.weight", (len(scaling[f"{k}_factor"]),), "F32") for k in ("long", "short")]
    return []


def tokenizer_vocab(spec: ModelSpec) -> int | None:
    """How many tokens the model's tokenizer.json defines (vocabulary plus added tokens)."""
    raw = spec.read_model_file("tokenizer.json")
    return None if raw is None else _vocab_count(raw)


@lru_cache(maxsize=4)
def _vocab_count(raw: bytes) -> int:
    tokenizer = json.loads(raw)
    return len(tokenizer["model"].get("vocab", {})) + len(tokenizer.get("added_tokens", []))


def sentencepiece_vocab(spec: ModelSpec) -> bool:
    """Whether the converter writes a SentencePiece vocabulary (pieces with scores, no merges): the
    model ships tokenizer.model and does not name a GPT-2 tokenizer."""
    from kolm_gguf.upstream import gpt2_tokenizer

    return "tokenizer.model" in (spec.model_files() or set()) and not gpt2_tokenizer(spec)


def tokenizer_metadata_bytes(spec: ModelSpec) -> tuple[int, bool]:
    """Bytes of the tokenizer arrays (tokens, types, merges or scores, chat template) and whether
    counted exactly from the model's tokenizer files or estimated from the vocabulary size."""
    vocab = spec.config["vocab_size"]
    raw = spec.read_model_file("tokenizer.json")
    if raw is None and spec.arch in SENTENCEPIECE_ARCHS:
        return int(vocab * (8 + MEAN_PIECE_BYTES + 4 + 4)), False
    if raw is None:
        merges = vocab
        return int(vocab * (8 + MEAN_TOKEN_BYTES + 4) + merges * (8 + MEAN_MERGE_BYTES)), False
    if gguf_arch(spec) == "gemma3":
        vocab = min(vocab, _vocab_count(raw))
    config = spec.read_model_file("tokenizer_config.json")
    return counted_bytes(raw, config, vocab, sentencepiece_vocab(spec)), True


@lru_cache(maxsize=4)  # the picker asks once per device and tier for the same model
def counted_bytes(raw: bytes, config_raw: bytes | None, vocab: int, sentencepiece: bool = False) -> int:
    """Bytes of the tokenizer arrays and chat template, counted from tokenizer.json and its config:
    token strings and types, then merges (BPE) or one float score per token (SentencePiece)."""
    tokenizer = json.loads(raw)
    by_id = {int(i): tok for tok, i in tokenizer["model"].get("vocab", {}).items()}
    by_id.update({int(a["id"]): a["content"] for a in tokenizer.get("added_tokens", [])})
    token_bytes = sum(8 + len(by_id.get(i, f"[PAD{i}]").encode()) for i in range(vocab)) + 4 * vocab
    if sentencepiece:
        pairs = 4 * vocab
    else:
        merges = tokenizer["model"].get("merges", [])
        pairs = sum(8 + len((m if isinstance(m, str) else " ".join(m)).encode()) for m in merges)
    template = 0
    if config_raw is not None:
        template = len(str(json.loads(config_raw).get("chat_template") or "").encode())
    return token_bytes + pairs + template


def type_mix(kinds: Iterable[str]) -> tuple[dict[str, int], str]:
    """How many tensors of each ggml type, as counts and as text ("166 Q5_0, 61 F32, ..."), most first."""
    counts = Counter(kinds)
    return dict(counts), ", ".join(f"{n} {t}" for t, n in counts.most_common())


def gguf_size(spec: ModelSpec, ftype: str) -> SizeForecast:
    """The GGUF file `spec` exports to at llama.cpp file type `ftype` (`Q4_K_M`), tensor by tensor."""
    tensors = gguf_tensors(spec)
    tokenizer_bytes, exact = tokenizer_metadata_bytes(spec)
    arch = gguf_arch(spec)
    size = quant_plan.gguf_file_size(tensors, ftype, FIXED_METADATA_BYTES + tokenizer_bytes, arch)
    types = quant_plan.plan_types(tensors, ftype, arch)
    counts, mix = type_mix(types.values())
    unread = 0  # bytes a decoded token does not read: the untied input embedding, unrouted experts
    for name, shape, _ in tensors:
        if name == "token_embd.weight" and not spec.tied_embeddings:
            unread += quant_plan.tensor_nbytes(shape, types[name])
        elif name.endswith("_exps.weight"):
            unread += round(quant_plan.tensor_nbytes(shape, types[name]) * (1 - routed_share(spec.config)))
    how = "tokenizer counted" if exact else "tokenizer estimated from vocab size"
    return SizeForecast(
        bytes=size,
        read_per_token_bytes=size - unread,
        method=f"llama.cpp {ftype} per-tensor rule ({mix}); {how}",
        tensor_types=counts,
    )


def tier_of(tensors: list[tuple[str, tuple[int, ...], str]], ftypes: dict[str, str], arch: str = "llama") -> str | None:
    """The tier (of `ftypes`, tier -> file type) whose llama.cpp per-tensor rule gives exactly these
    (name, shape, type) tensors."""
    shapes = [(name, shape, converted_type(name, shape)) for name, shape, _ in tensors]
    found = {name: kind for name, _, kind in tensors}
    for tier, ftype in ftypes.items():
        if quant_plan.plan_types(shapes, ftype, arch) == found:
            return tier
    return None
