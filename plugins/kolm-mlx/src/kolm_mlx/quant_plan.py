"""mlx-lm's quantization rule (mlx-lm 0.32, `mlx_lm.utils.quantize_model` with affine mode): every
Linear and Embedding whose input dimension divides the group size is stored as packed uint32
weights plus one float16 scale and bias per group; everything else stays float16. Used both to
forecast an export and to read a payload's tier back from its tensors.

A tier's recipe (backend.json) holds the exact `mlx_lm.convert` keyword arguments: `quantize`,
`q_bits`, `q_group_size`, `q_mode`."""

from __future__ import annotations

from collections import Counter

from kolm.api import Flags, ModelSpec

DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4, "U32": 4}

Stored = tuple[str, str, tuple[int, ...]]  # (name, safetensors dtype, shape)


def quantization(options: Flags) -> dict | None:
    """The `quantization` entry `mlx_lm.convert` writes into config.json for these convert options
    (None when it does not quantize)."""
    if not options.get("quantize"):
        return None
    return {"group_size": options["q_group_size"], "bits": options["q_bits"], "mode": options["q_mode"]}


def stored_tensors(spec: ModelSpec, options: Flags) -> list[Stored]:
    """The tensors `mlx_lm.convert` writes for `spec` with these convert options (float16 when
    not quantizing, and for every tensor left unquantized): a 2-D `.weight` is a Linear or Embedding."""
    quant = quantization(options) or {"bits": None, "group_size": 1}
    bits, group = quant["bits"], quant["group_size"]
    out: list[Stored] = []
    for t in spec.inventory.tensors:
        if t.name.endswith("rotary_emb.inv_freq") or (t.name == "lm_head.weight" and spec.tied_embeddings):
            continue
        rows, cols = (t.shape[0], t.shape[-1]) if len(t.shape) == 2 else (0, 0)
        if bits and t.name.endswith(".weight") and len(t.shape) == 2 and cols % group == 0:
            prefix = t.name.removesuffix(".weight")
            out += [
                (t.name, "U32", (rows, cols * bits // 32)),
                (prefix + ".scales", "F16", (rows, cols // group)),
                (prefix + ".biases", "F16", (rows, cols // group)),
            ]
        else:
            out.append((t.name, "F16", t.shape))
    return out


def nbytes(tensor: Stored) -> int:
    n = DTYPE_BYTES[tensor[1]]
    for d in tensor[2]:
        n *= d
    return n


def tensor_bits(tensors: dict[str, dict], group_size: int) -> set[float]:
    """The bit widths the quantized tensors show for this group size: a packed `X.weight` (uint32)
    of shape (rows, cols·bits/32) beside `X.scales` of shape (rows, cols/group_size). Shapes fix
    only bits × group size, so the group size comes from config.json."""
    bits = set()
    for name, info in tensors.items():
        scales = tensors.get(name.removesuffix(".weight") + ".scales")
        if name.endswith(".weight") and info["dtype"] == "U32" and scales is not None:
            bits.add(info["shape"][-1] * 32 / (scales["shape"][-1] * group_size))
    return bits


def tier_of(tensors: dict[str, dict], config: dict, recipes: dict[str, Flags]) -> str | None:
    """The tier (of `recipes`, tier -> convert options) that both config.json's "quantization" and
    the tensors themselves show, or None when they disagree or match no tier (a mixed-bit model,
    another group size, bfloat16 weights)."""
    quant = config.get("quantization")
    floats = {info["dtype"] for info in tensors.values() if info["dtype"] != "U32"}
    if floats != {"F16"}:
        return None
    if quant is not None and (set(quant) - {"group_size", "bits", "mode"} or quant.get("mode", "affine") != "affine"):
        return None  # per-layer overrides: a mixed-precision model
    for tier, options in recipes.items():
        wanted = quantization(options)
        if wanted is None and quant is None and not tensor_bits(tensors, 1):
            return tier
        if wanted is not None and quant == wanted and tensor_bits(tensors, wanted["group_size"]) == {wanted["bits"]}:
            return tier
    return None


def type_mix(tensors: dict[str, dict]) -> str:
    """How many tensors of each dtype, most first ("211 U32, 422 F16")."""
    counts = Counter(info["dtype"] for info in tensors.values())
    return ", ".join(f"{n} {t}" for t, n in counts.most_common())
