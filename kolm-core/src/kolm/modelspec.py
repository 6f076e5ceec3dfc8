"""What kolm knows about a model before touching weights, from whatever the user pointed at.

`resolve_model` accepts a `.kolm` artifact, a Hugging Face `config.json`, a Hugging Face model
folder, or the name of a known reference base (`kolm bases`); the result carries the config and
the tensor inventory every forecast is computed from.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from kolm.datamodel import KolmModel
from kolm.devices import normalize_name
from kolm.errors import UnknownModelError
from kolm.inventory import EXPERT_MARK, Inventory, config_inventory, routed_share, tied

EMBEDDED_MANIFEST_BYTES = 2_000  # an RS-1 manifest as JSON, for a model that is not a .kolm yet


class ReferenceBase(KolmModel):
    """A published model known by name, with the config its shapes come from."""

    name: str
    aliases: list[str]
    hf_repo: str
    source: str
    config: dict


# llama.cpp's default KV cache type is f16, 2 bytes a value: "-ctk, --cache-type-k TYPE | KV cache data
# type for K ... (default: f16)", https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md
KV_CACHE_BYTES = 2


class ModelSpec(KolmModel):
    """A model as the forecast sees it.

    `origin` says what the user gave; `path` is the `.kolm`, config or folder (None for a base);
    `quant` is the tier of the weights it holds; `refusals` the backends that could not convert
    it when it was packed (an artifact's manifest), with their reasons; `eval_pack_sha256` the
    artifact's eval pack (None for anything else: it would be packed with the default pack).
    """

    name: str
    ref: str
    origin: Literal["artifact", "config", "folder", "base"]
    path: Path | None
    config: dict
    inventory: Inventory
    quant: str = "fp16"
    refusals: dict[str, str] = {}
    eval_pack_sha256: str | None = None
    sources: list[str] = []

    @property
    def arch(self) -> str:
        return (self.config.get("architectures") or ["?"])[0]

    @property
    def tied_embeddings(self) -> bool:
        return tied(self.config)

    def read_share(self, name: str) -> float:
        """The share of tensor `name`'s bytes (a weight, or a quantized weight's scales and biases) one
        decoded token reads: none of an untied input embedding (one row is gathered), experts per
        token over experts of a routed expert's weights (mixture of experts), all of any other."""
        if "embed_tokens." in name and not self.tied_embeddings:
            return 0.0
        return routed_share(self.config) if EXPERT_MARK in name else 1.0

    @property
    def active_params(self) -> int:
        """Parameters one token computes with: all of a dense model's; a mixture of experts' shared
        weights plus its routed experts' share (the "active parameters" of a model card)."""
        share = routed_share(self.config)
        return round(sum(t.numel * (share if EXPERT_MARK in t.name else 1) for t in self.inventory.tensors))

    def kv_cache_bytes(self, context: int, bytes_per_value: int = KV_CACHE_BYTES) -> int:
        """Bytes of the K and V caches for `context` tokens: 2 x layers x KV heads x head size per
        token, each value `bytes_per_value` (llama.cpp's default cache type, f16). Every layer holds
        the whole context: an upper bound for sliding-window layers (Gemma 2/3)."""
        c = self.config
        heads = c.get("num_attention_heads") or 1
        kv_heads = c.get("num_key_value_heads") or heads
        head_dim = c.get("head_dim") or c.get("hidden_size", 0) // heads
        return 2 * c.get("num_hidden_layers", 0) * kv_heads * head_dim * context * bytes_per_value

    def model_files(self) -> set[str] | None:
        """The names of the Hugging Face folder's files; None when there is no folder (a config or a
        base name)."""
        if self.origin == "artifact":
            from kolm.artifact import MODEL_DIR, Artifact

            with Artifact(self.path) as art:
                return {name.removeprefix(MODEL_DIR) for name in art.names() if name.startswith(MODEL_DIR)}
        if self.origin == "folder":
            return {p.name for p in self.path.iterdir() if p.is_file()}
        return None

    def embedded_manifest(self, tier: str) -> str:
        """The manifest an export's `embed_manifest` will write, for size forecasts: the artifact's own
        at `tier` (K unknown yet: a long float stands in), or EMBEDDED_MANIFEST_BYTES when the model is
        not a `.kolm`."""
        if self.origin != "artifact":
            return "x" * EMBEDDED_MANIFEST_BYTES
        from kolm.artifact import Artifact

        with Artifact(self.path) as art:
            return art.manifest.model_copy(update={"quant": tier, "k_score": 1 / 3}).to_json()

    def read_model_file(self, name: str) -> bytes | None:
        """A small file of the Hugging Face folder (e.g. `tokenizer.json`), if the model has one."""
        if self.origin == "artifact":
            from kolm.artifact import Artifact

            with Artifact(self.path) as art:
                member = "model/" + name
                return art.read(member) if member in art.names() else None
        if self.origin == "folder":
            candidate = self.path / name
            return candidate.read_bytes() if candidate.is_file() else None
        return None


@cache
def reference_bases() -> tuple[ReferenceBase, ...]:
    data = json.loads(files("kolm").joinpath("bases.json").read_text(encoding="utf-8"))
    return tuple(ReferenceBase.model_validate(b) for b in data["bases"])


def find_base(name: str) -> ReferenceBase | None:
    key = normalize_name(name)
    for base in reference_bases():
        if key in {normalize_name(n) for n in (base.name, *base.aliases, base.hf_repo)}:
            return base
    return None


def _dtype_of(config: dict) -> str:
    return {"float16": "F16", "float32": "F32"}.get(str(config.get("torch_dtype", config.get("dtype"))), "BF16")


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnknownModelError(f"{path}: not a readable config.json ({exc})") from exc
    if not isinstance(config, dict) or "architectures" not in config:
        raise UnknownModelError(f"{path}: not a Hugging Face config.json (no 'architectures')")
    return config


def resolve_model(ref: str) -> ModelSpec:
    """Turn a user's model reference into a `ModelSpec`."""
    path = Path(ref)
    if path.is_file() and path.name == "config.json":
        config = _read_config(path)
        return ModelSpec(
            name=config.get("_name_or_path") or path.parent.name,
            ref=ref,
            origin="config",
            path=path,
            config=config,
            inventory=config_inventory(config, _dtype_of(config)),
        )
    if path.is_file():
        from kolm.artifact import Artifact

        with Artifact(path) as art:
            manifest = art.manifest
            return ModelSpec(
                name=manifest.base,
                ref=ref,
                origin="artifact",
                path=path,
                config=art.config(),
                inventory=art.inventory(),
                quant=manifest.quant,
                refusals=manifest.refusals,
                eval_pack_sha256=manifest.eval_pack.sha256,
            )
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UnknownModelError(f"{path}: folder has no config.json; not a Hugging Face model folder")
        from kolm.artifact import folder_inventory

        config = _read_config(path / "config.json")
        inventory = folder_inventory(path)
        if not inventory.tensors:
            inventory = config_inventory(config, _dtype_of(config))
        return ModelSpec(
            name=path.resolve().name, ref=ref, origin="folder", path=path, config=config, inventory=inventory
        )
    base = find_base(ref)
    if base is None:
        known = ", ".join(b.name for b in reference_bases())
        raise UnknownModelError(
            f"{ref!r} is not a .kolm file, config.json, model folder or known base; known bases: {known}"
        )
    return ModelSpec(
        name=base.name,
        ref=base.name,
        origin="base",
        path=None,
        config=base.config,
        inventory=config_inventory(base.config, _dtype_of(base.config)),
        sources=[base.source],
    )
