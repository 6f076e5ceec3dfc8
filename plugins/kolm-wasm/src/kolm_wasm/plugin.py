"""kolm-wasm: the browser target. It builds on the `gguf` backend (backend.json `builds_on`): its
tier table and payload are gguf's, and every hook that touches the GGUF (size, export, manifest,
run, read-back, bench) is asked of that backend through `base`, never by importing kolm-gguf. This
plugin adds the page, wllama's runtime, the split into browser-sized parts, and a static server
(`kolm serve`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from kolm import hookimpl
from kolm.api import (
    BackendPlugin,
    BenchRequest,
    BenchResult,
    DeviceProfile,
    ExportRequest,
    ExportResult,
    ModelSpec,
    PayloadFacts,
    RunRequest,
    Session,
    SizeForecast,
    Tier,
    UiPage,
)
from kolm.plugin_data import PluginData

_data = PluginData(__package__)
backend, device_profiles, forecast_throughput = _data.backend, _data.device_profiles, _data.forecast_throughput


@hookimpl
def ui_pages() -> list[UiPage]:
    """`kolm ui`'s /verify: the six checks in a tab, for an export folder and a .kolm from disk."""
    return [UiPage(route="verify", title="Verify", package=__package__, folder="static", entry="verify.html")]


@hookimpl
def forecast_size(
    spec: ModelSpec, tier: Tier, device: DeviceProfile | None, base: BackendPlugin
) -> SizeForecast | None:
    return base.forecast_size(spec, tier, device)


@hookimpl
def cannot_export(spec: ModelSpec, tier: Tier, device: DeviceProfile | None, base: BackendPlugin) -> str | None:
    """The bundle is gguf's payload split into parts, so it refuses what gguf refuses."""
    return base.cannot_export(spec, tier, device)


@hookimpl
def export(request: ExportRequest, base: BackendPlugin) -> ExportResult:
    from kolm_wasm.bundle import export_bundle

    return export_bundle(request, base)


@hookimpl
def embed_manifest(out_dir: Path, payload: list[str], manifest_json: str, base: BackendPlugin) -> bool:
    base.embed_manifest(out_dir, payload, manifest_json)
    return True


@hookimpl
def run(request: RunRequest, base: BackendPlugin) -> Session:
    from kolm_wasm.session import WasmSession

    return WasmSession(request.path, base.run(request))


@hookimpl
def read_payload(request: RunRequest, base: BackendPlugin) -> PayloadFacts:
    if len(request.payload) == 1:
        return base.read_payload(request)
    from kolm_wasm.bundle import merge_parts

    with tempfile.TemporaryDirectory(prefix=".kolm-wasm-") as work:  # the tensor types span every part
        merged = merge_parts([request.path / p for p in request.payload], Path(work) / "merged.gguf")
        return base.read_payload(request.model_copy(update={"path": merged.parent, "payload": [merged.name]}))


@hookimpl
def bench(request: BenchRequest, base: BackendPlugin) -> BenchResult:
    result = base.bench(request)
    return result.model_copy(update={"runtime": f"{result.runtime} (native; the tab runs wllama)"})
