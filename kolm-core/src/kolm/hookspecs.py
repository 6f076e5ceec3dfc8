"""The whole kolm plugin API: one function per hook. The types they take and return are in `kolm.api`.

A plugin is a module (or object) with functions of these names decorated with `kolm.hookimpl`,
registered through the entry-point group `kolm`:

    [project.entry-points.kolm]
    gguf = "kolm_gguf.plugin"

Two kinds of hooks:
- **Table hooks** (`device_profiles`, `import_weights`, `ui_pages`) are asked of every plugin.
- **Backend hooks** (`forecast_size` ... `bench`) belong to a backend. A plugin that answers them
  declares exactly one backend with the `backend` hook, and kolm calls those hooks on that plugin
  only: an implementation never checks which backend it is asked about. A backend hook a plugin
  leaves out is a capability it does not have: without `export` a backend is forecast-only, and
  `kolm export` refuses it in one line before reading anything.

Every backend hook may take `base`: for a backend that `builds_on` another (the browser bundle on
GGUF), the `kolm.api.BackendPlugin` of that backend, whose hooks it may call; otherwise None.
Implementations take only the arguments they use (pluggy matches them by name).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pluggy

from kolm.api import (
    Backend,
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
    ThroughputForecast,
    Tier,
    TierRecipe,
    UiPage,
)

hookspec = pluggy.HookspecMarker("kolm")


@hookspec
def backend() -> Backend:
    """Declare the one backend this plugin owns: its name, tier table (or the backend it
    `builds_on`), toolchain modules and install command.

    Called once when plugins load. Must return a `Backend` (most plugins read it from
    `backend.json` with `kolm.plugin_data.PluginData`); a plugin that owns no backend leaves the
    hook out. A second plugin declaring the same name makes that backend unusable until one is
    uninstalled: kolm never picks between them.
    """


@hookspec
def device_profiles() -> list[DeviceProfile]:
    """Contribute rows to the device table (`kolm devices`, `--target`).

    Return a list of `DeviceProfile`; every constant carries its public source. A row whose name
    is already in the table adds its backends (and aliases) to that row and changes nothing else.
    Must not import the toolchain.
    """


@hookspec
def ui_pages() -> list[UiPage]:
    """Add pages to `kolm ui` (the browser bundle adds `/verify`, the six checks in a tab).

    Return a list of `UiPage`: static files shipped in the plugin's package, linked from the page
    header. Asked of every plugin; a route two plugins claim is served from the first one loaded.
    Must not import the toolchain.
    """


@hookspec(firstresult=True)
def import_weights(source: Path, out_dir: Path, steps: Callable) -> str | None:
    """Turn a model file of your format (e.g. a GGUF) into a Hugging Face folder for `kolm pack`.

    Called by `kolm pack --from-FORMAT`, on every plugin until one answers. Write config.json,
    float16 `*.safetensors` and tokenizer files into the existing folder `out_dir` and return the
    model's name, or return None if `source` is not your format. `steps(description)` opens a
    progress step.
    """


@hookspec(firstresult=True)
def forecast_size(
    spec: ModelSpec, tier: Tier, recipe: TierRecipe, device: DeviceProfile, base: BackendPlugin | None
) -> SizeForecast | None:
    """Forecast the bytes on disk of `spec` exported at `tier` (made by `recipe`) for `device`.

    Called by the forecast, before converting anything. Compute it from `spec.inventory` with the
    toolchain's real per-tensor type choice (and metadata); `device` matters only where the payload
    depends on the target (ONNX adds `model.ort` for phones). Return None when you have no size
    model for this model: kolm then shows a nominal size and says so. Must be cheap and must not
    import the toolchain.
    """


@hookspec(firstresult=True)
def forecast_throughput(
    device: DeviceProfile, spec: ModelSpec | None, tier: Tier, size: SizeForecast, base: BackendPlugin | None
) -> ThroughputForecast | None:
    """Forecast decode tokens/s at `tier` on `device`.

    Called by the forecast after `forecast_size`, and by `kolm bench` with `spec=None` and the
    measured payload's size; `size.read_per_token_bytes` is what one token reads. Return a
    `ThroughputForecast` (a range, its arithmetic and sources) calibrated for this kind of device
    (`kolm.throughput.roofline`), or None without a calibration for it: kolm then shows the
    uncalibrated bandwidth ceiling, labelled as such.
    """


@hookspec(firstresult=True)
def cannot_export(
    spec: ModelSpec, tier: Tier, recipe: TierRecipe, device: DeviceProfile | None, base: BackendPlugin | None
) -> str | None:
    """Say, before anything is converted, why this backend cannot export `spec`: return a one-line
    reason ("llama.cpp's converter does not convert NovelForCausalLM"), or None if it can.

    Called by the forecast (the picker and the preview then show the reason instead of a command),
    by `kolm export` before it reads the artifact, and by `kolm pack` to choose the backend that
    measures the fp16 K. Decide from `spec.config` and `spec.arch` with what the toolchain itself
    declares, never from a list copied from another backend. Must be cheap and must not import the
    toolchain. A model let through may still fail conversion, with the toolchain's own reason.
    """


@hookspec(firstresult=True)
def export(request: ExportRequest, base: BackendPlugin | None) -> ExportResult:
    """Convert the artifact's weights with the backend's real toolchain.

    Called by `kolm export` (and by `kolm pack`, `kolm verify` at fp16 for the K and fidelity
    references). Write the payload into `request.out_dir` (use `request.work_dir` for scratch) and
    return an `ExportResult` naming the payload files, toolchain versions and exact flags. Raise a
    `KolmError` subclass with a one-line message on failure. The core then measures K through
    `run` and stamps the manifest through `embed_manifest`.
    """


@hookspec(firstresult=True)
def embed_manifest(out_dir: Path, payload: list[str], manifest_json: str, base: BackendPlugin | None) -> bool:
    """Write the RS-1 manifest (JSON, with the measured K) into the exported payload's own metadata.

    Called by `kolm export` after `export` and K-scoring, on the files `export` listed in
    `out_dir`. Return True once the payload carries it (GGUF key `kolm.manifest`, ONNX
    `metadata_props`, safetensors metadata), rewriting files atomically.
    """


@hookspec(firstresult=True)
def run(request: RunRequest, base: BackendPlugin | None) -> Session:
    """Open an exported payload for generation and scoring.

    Called by `kolm run`, `kolm serve`, `kolm verify` and K-scoring. Return a `Session`; import the
    toolchain here (or on the session's first use), not at module import.
    """


@hookspec(firstresult=True)
def read_payload(request: RunRequest, base: BackendPlugin | None) -> PayloadFacts:
    """Read back what an exported payload says about itself, for `kolm verify`.

    Return `PayloadFacts`: the manifest JSON `embed_manifest` wrote (None if absent) and the tier
    the stored tensor types show (None if they match no tier). Read the payload files themselves;
    never trust `kolm-export.json`.
    """


@hookspec(firstresult=True)
def bench(request: BenchRequest, base: BackendPlugin | None) -> BenchResult:
    """Measure prompt-processing and generation tokens/s, load time and peak RSS on this machine.

    Called by `kolm bench`; return a `BenchResult`.
    """


BACKEND_HOOKS = (
    "forecast_size",
    "forecast_throughput",
    "cannot_export",
    "export",
    "embed_manifest",
    "run",
    "read_payload",
    "bench",
)
