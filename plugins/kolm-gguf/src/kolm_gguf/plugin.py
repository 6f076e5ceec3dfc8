"""kolm-gguf: GGUF exports through llama.cpp (llama-cpp-python and gguf).

Forecasts are answered from data and `quant_plan` without importing the toolchain; export, run
and bench import it inside the hook. The tier table is `backend.json`'s (tier -> llama.cpp file type).
"""

from __future__ import annotations

import os
from pathlib import Path

from kolm import hookimpl
from kolm.api import (
    BenchRequest,
    BenchResult,
    ExportRequest,
    ExportResult,
    ModelSpec,
    PayloadFacts,
    RunRequest,
    Session,
    SizeForecast,
    TierRecipe,
)
from kolm.errors import ArtifactError
from kolm.plugin_data import PluginData

_data = PluginData(__package__)
backend, device_profiles, forecast_throughput = _data.backend, _data.device_profiles, _data.forecast_throughput


def ftypes() -> dict[str, str]:
    """Tier -> llama.cpp file type name (`int4` -> `Q4_K_M`), from backend.json."""
    return {tier: recipe.spelling for tier, recipe in _data.declared.tiers.items()}


@hookimpl
def import_weights(source: Path, out_dir: Path, steps) -> str | None:
    with open(source, "rb") as f:
        if f.read(4) != b"GGUF":
            if source.suffix.lower() == ".gguf":
                raise ArtifactError(f"{source}: not a GGUF file (no GGUF magic)")
            return None
    from kolm.errors import UnsupportedModelError

    from kolm_gguf import convert, hf_import
    from kolm_gguf.gguf_file import read_header

    name = source.name.split(".")[0]  # SmolLM2-135M-Instruct.Q4_1.gguf -> SmolLM2-135M-Instruct
    if read_header(source).get("general.architecture") == "llama":
        try:  # kolm's own streaming importer for the plain Llama family (GPT-2-style BPE, no rope_freqs)
            with steps(f"dequantizing {source.name} to float16 safetensors") as advance:
                convert.gguf_to_hf(source, out_dir, progress=advance)
            return name
        except UnsupportedModelError:
            pass  # a Llama it cannot take: transformers' loader below
    with steps(f"dequantizing {source.name} to float16 safetensors with transformers"):
        hf_import.gguf_to_hf(source, out_dir)
    return name


@hookimpl
def forecast_size(spec: ModelSpec, recipe: TierRecipe) -> SizeForecast | None:
    """llama.cpp's per-tensor rule where kolm knows the model's tensor names (the Llama family);
    None otherwise, and the forecast says it is nominal."""
    from kolm.errors import UnsupportedModelError

    from kolm_gguf.size import gguf_size

    try:
        return gguf_size(spec, recipe.spelling)
    except UnsupportedModelError:
        return None


@hookimpl
def cannot_export(spec: ModelSpec) -> str | None:
    from kolm_gguf.upstream import cannot_convert

    return cannot_convert(spec)


@hookimpl
def export(request: ExportRequest) -> ExportResult:
    from kolm_gguf.export import export_gguf

    return export_gguf(request)


@hookimpl
def embed_manifest(out_dir: Path, payload: list[str], manifest_json: str) -> bool:
    from kolm_gguf.gguf_file import MANIFEST_KEY, set_string

    set_string(out_dir / payload[0], MANIFEST_KEY, manifest_json)
    return True


@hookimpl
def run(request: RunRequest) -> Session:
    from kolm_gguf.runtime import GgufSession

    return GgufSession(
        request.path / request.payload[0],
        n_ctx=request.n_ctx,
        threads=request.threads or os.cpu_count(),
        seed=request.seed,
    )


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts:
    from kolm_gguf.gguf_file import MANIFEST_KEY, read_header
    from kolm_gguf.size import tier_of, type_mix

    header = read_header(request.path / request.payload[0])
    tier = tier_of(header.tensors, ftypes(), header.get("general.architecture", "llama"))
    return PayloadFacts(
        manifest_json=header.get(MANIFEST_KEY),
        tier=tier,
        recipe=_data.declared.tiers[tier].name if tier else None,
        types=type_mix(kind for _, _, kind in header.tensors)[1],
    )


@hookimpl
def bench(request: BenchRequest) -> BenchResult:
    from kolm_gguf.bench import bench_gguf

    return bench_gguf(request, request.path / request.payload[0])
