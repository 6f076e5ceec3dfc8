"""kolm-coreml: Core ML exports for iPhone through coremltools (stateful KV cache, iOS 18 target).

Conversion and compression run on Linux; prediction needs Core ML (macOS 15+, iOS 18). Forecasts are
answered from data and `size` without importing the toolchain; export, run, read_payload and bench
import it inside the hook.
"""

from __future__ import annotations

from collections import Counter
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
    Tier,
    TierRecipe,
)
from kolm.plugin_data import PluginData

_data = PluginData(__package__)
backend, device_profiles, forecast_throughput = _data.backend, _data.device_profiles, _data.forecast_throughput


@hookimpl
def forecast_size(spec: ModelSpec, tier: Tier, recipe: TierRecipe) -> SizeForecast:
    from kolm_coreml.size import coreml_size

    return coreml_size(spec, tier, recipe.options)


@hookimpl
def cannot_export(spec: ModelSpec) -> str | None:
    from kolm_coreml.support import cannot_convert

    return cannot_convert(spec)


@hookimpl
def export(request: ExportRequest) -> ExportResult:
    from kolm_coreml.export import export_coreml

    return export_coreml(request)


@hookimpl
def embed_manifest(out_dir: Path, payload: list[str], manifest_json: str) -> bool:
    """Stamp the package's user-defined metadata (its weights file is not read)."""
    from kolm_coreml.export import require_toolchain
    from kolm_coreml.package import MANIFEST_KEY, PACKAGE, set_metadata

    require_toolchain("coremltools")
    set_metadata(out_dir / PACKAGE, MANIFEST_KEY, manifest_json)
    return True


@hookimpl
def run(request: RunRequest) -> Session:
    from kolm_coreml.runtime import open_session

    return open_session(request.path)


@hookimpl
def read_payload(request: RunRequest) -> PayloadFacts:
    from kolm_coreml.export import require_toolchain
    from kolm_coreml.package import MANIFEST_KEY, PACKAGE, kind_of, metadata, recipe_of, weight_ops, weights

    require_toolchain("coremltools")
    package = request.path / PACKAGE
    kinds = {name: kind_of(op) for name, op in weight_ops(weights(package)).items()}
    tier, recipe = recipe_of(kinds, _data.declared.recipes()) or (None, None)
    return PayloadFacts(
        manifest_json=metadata(package).get(MANIFEST_KEY),
        tier=tier,
        recipe=recipe,
        types=", ".join(f"{n} {kind}" for kind, n in Counter(kinds.values()).most_common()),
    )


@hookimpl
def bench(request: BenchRequest) -> BenchResult:
    from kolm_coreml.bench import bench_coreml

    return bench_coreml(request)
