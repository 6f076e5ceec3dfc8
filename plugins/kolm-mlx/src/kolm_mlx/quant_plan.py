"""mlx-lm's quantization rule (mlx-lm 0.32, `mlx_lm.utils.quantize_model` with affine mode): every
Linear and Embedding whose input dimension divides the group size is stored as packed uint32
weights plus one float16 scale and bias per group; everything else stays float16. Used both to
forecast an export and to read a payload's recipe back from its tensors.

A recipe's options (backend.json) are `mlx_lm.convert`'s own keyword arguments (`quantize`,
`q_bits`, `q_group_size`, `q_mode`, `dtype`) plus kolm's `embedding_bits`: the token embedding (and
an untied `lm_head`) at more bits, which the export passes to `mlx_lm.convert` as a `quant_predicate`
and mlx-lm records per module in config.json's `quantization`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from kolm.api import Flags, ModelSpec, TierRecipe

DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4, "U32": 4}
EMBEDDING_MODULES = ("embed_tokens", "lm_head")  # a tied model decodes through embed_tokens
KOLM_OPTIONS = ("embedding_bits",)  # recipe options that are kolm's, not mlx_lm.convert's

Stored = tuple[str, str, tuple[int, ...]]  # (name, safetensors dtype, shape)


def is_embedding(path: str) -> bool:
    """Whether the module at `path` (`model.embed_tokens`, `lm_head`) is the embedding or output layer."""
    return path.rsplit(".", 1)[-1] in EMBEDDING_MODULES


def module_quant(options: Flags, path: str) -> dict:
    """The quantization parameters mlx-lm applies to the module at `path` under these options."""
    bits = options.get("embedding_bits", options["q_bits"]) if is_embedding(path) else options["q_bits"]
    return {"group_size": options["q_group_size"], "bits": bits, "mode": options["q_mode"]}


def quantization(options: Flags, paths: list[str] = ()) -> dict | None:
    """The `quantization` entry `mlx_lm.convert` writes into config.json for these options, given the
    paths of the modules it quantizes (each with its own parameters where they differ); None when
    it does not quantize."""
    if not options.get("quantize"):
        return None
    base = module_quant(options, "")
    return {**base, **{path: module_quant(options, path) for path in paths if module_quant(options, path) != base}}


def convert_arguments(options: Flags) -> dict:
    """`mlx_lm.convert`'s keyword arguments for these options (`embedding_bits` as a `quant_predicate`)."""
    arguments = {k: v for k, v in options.items() if k not in KOLM_OPTIONS}
    if "embedding_bits" in options:
        arguments["quant_predicate"] = per_module_predicate(options)
    return arguments


def per_module_predicate(options: Flags) -> Callable[[str, object], bool | dict]:
    """A `quant_predicate`: the embedding modules' own parameters, the defaults (True) elsewhere."""
    base = module_quant(options, "")

    def predicate(path: str, module: object) -> bool | dict:
        own = module_quant(options, path)
        return own if own != base else True

    return predicate


def stored_tensors(spec: ModelSpec, options: Flags) -> tuple[list[Stored], list[str]]:
    """(the tensors `mlx_lm.convert` writes for `spec` with these options, the paths of the modules
    it quantizes): a 2-D `.weight` is a Linear or Embedding; float16 when not quantizing, and for
    every tensor left unquantized."""
    quantize = bool(options.get("quantize"))
    out: list[Stored] = []
    paths: list[str] = []
    for t in spec.inventory.tensors:
        if t.name.endswith("rotary_emb.inv_freq") or (t.name == "lm_head.weight" and spec.tied_embeddings):
            continue
        rows, cols = (t.shape[0], t.shape[-1]) if len(t.shape) == 2 else (0, 0)
        path = t.name.removesuffix(".weight")
        if quantize and t.name.endswith(".weight") and len(t.shape) == 2 and cols % options["q_group_size"] == 0:
            quant = module_quant(options, path)
            bits, group = quant["bits"], quant["group_size"]
            paths.append(path)
            out += [
                (t.name, "U32", (rows, cols * bits // 32)),
                (path + ".scales", "F16", (rows, cols // group)),
                (path + ".biases", "F16", (rows, cols // group)),
            ]
        else:
            out.append((t.name, "F16", t.shape))
    return out, paths


def nbytes(tensor: Stored) -> int:
    n = DTYPE_BYTES[tensor[1]]
    for d in tensor[2]:
        n *= d
    return n


def module_bits(tensors: dict[str, dict], quant: dict) -> dict[str, float | None]:
    """Each quantized module's bit width as its tensors show it: a packed `X.weight` (uint32) of shape
    (rows, cols·bits/32) beside `X.scales` of shape (rows, cols/group_size). Shapes fix only
    bits × group size, so each module's group size comes from config.json's `quantization`."""
    bits = {}
    for name, info in tensors.items():
        path = name.removesuffix(".weight")
        scales = tensors.get(path + ".scales")
        if name.endswith(".weight") and info["dtype"] == "U32" and scales is not None:
            own = quant.get(path)
            group = (own if isinstance(own, dict) else quant).get("group_size")
            bits[path] = info["shape"][-1] * 32 / (scales["shape"][-1] * group) if isinstance(group, int) else None
    return bits


def recipe_of(tensors: dict[str, dict], config: dict, recipes: list[tuple[str, TierRecipe]]) -> tuple[str, str] | None:
    """The (tier, recipe name), of `recipes` (`Backend.recipes()`), that both config.json's
    `quantization` and the tensors themselves show, module by module; None when they disagree or
    match no recipe (another group size or bit mix, bfloat16 weights)."""
    quant = config.get("quantization")
    floats = {info["dtype"] for info in tensors.values() if info["dtype"] != "U32"}
    if floats != {"F16"}:
        return None
    shown = module_bits(tensors, quant or {"group_size": 1})
    for tier, recipe in recipes:
        options = recipe.options
        expected = {path: module_quant(options, path)["bits"] for path in shown} if options.get("quantize") else {}
        if quantization(options, list(shown)) == quant and shown == expected:
            return tier, recipe.name
    return None


def type_mix(tensors: dict[str, dict]) -> str:
    """How many tensors of each dtype, most first ("211 U32, 422 F16")."""
    counts = Counter(info["dtype"] for info in tensors.values())
    return ", ".join(f"{n} {t}" for t, n in counts.most_common())
