"""The whole kolm plugin API: one function per hook.

A plugin is a module (or object) with functions of these names decorated with `kolm.hookimpl`,
registered through the entry-point group `kolm`:

    [project.entry-points.kolm]
    gguf = "kolm_gguf.plugin"

Hooks marked firstresult stop at the first implementation that returns something other than None:
a plugin answers for the backends it owns and returns None for every other one. kolm-core's own
fallbacks (nominal sizes, an uncalibrated roofline) are registered the same way, `trylast`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from kolm.backends import Backend
    from kolm.bench import BenchRequest, BenchResult
    from kolm.devices import DeviceProfile
    from kolm.export import ExportRequest, ExportResult
    from kolm.forecast import SizeForecast
    from kolm.modelspec import ModelSpec
    from kolm.session import PayloadFacts, RunRequest, Session
    from kolm.throughput import ThroughputForecast

hookspec = pluggy.HookspecMarker("kolm")


@hookspec
def backends() -> list[Backend]:
    """Declare the backends this plugin owns.

    Called whenever kolm needs the backend table (`kolm plugins`, forecasts, export). Return one
    `Backend` per backend name: the tiers it can do and their spelling in its toolchain, the
    toolchain modules it imports (checked with importlib, never imported here), and the install
    hint `kolm plugins` shows when one is missing. Return an empty list if the plugin owns no backend.
    """


@hookspec
def device_profiles() -> list[DeviceProfile]:
    """Contribute rows to the device table (`kolm devices`, `--target`).

    Return a list of `DeviceProfile`; every constant carries its public source. A row whose name
    is already in the table adds its backends (and aliases) to that row and changes nothing else.
    Must not import the toolchain.
    """


@hookspec(firstresult=True)
def import_weights(source: Path, out_dir: Path, steps: Callable) -> str | None:
    """Turn a model file of your format (e.g. a GGUF) into a Hugging Face folder for `kolm pack`.

    Called by `kolm pack --from-FORMAT`. Write config.json, float16 `*.safetensors` and tokenizer
    files into the existing folder `out_dir` and return the model's name, or return None if
    `source` is not your format. `steps(description)` opens a progress bar.
    """


@hookspec(firstresult=True)
def forecast_size(spec: ModelSpec, tier: str, backend: str, device: DeviceProfile) -> SizeForecast | None:
    """Forecast the bytes on disk of `spec` exported by `backend` at `tier` for `device`, before converting.

    Called by the forecast. Return a `SizeForecast` computed from `spec.inventory` with the
    backend's real per-tensor type choice (and metadata); return None if `backend` is not yours.
    `device` matters only to backends whose payload depends on the target (onnx adds the `.ort`
    file ONNX Runtime Mobile loads for phones); an implementation may leave the argument out.
    Must be cheap and must not import the toolchain.
    """


@hookspec(firstresult=True)
def forecast_throughput(
    device: DeviceProfile, spec: ModelSpec, tier: str, backend: str, size: SizeForecast
) -> ThroughputForecast | None:
    """Forecast decode tokens/s of `spec` at `tier` on `device` with `backend`.

    Called by the forecast after `forecast_size`, and by `kolm bench` with `spec=None` and the
    measured payload size; `size.read_per_token_bytes` is what one token reads. Return a `ThroughputForecast` (a range, its arithmetic and sources) calibrated for
    your backend on this kind of device, or None if `backend` is not yours or you have no
    calibration for this device kind (the core's uncalibrated roofline then answers).
    """


@hookspec(firstresult=True)
def export(request: ExportRequest) -> ExportResult | None:
    """Convert the artifact in `request` with your backend's real toolchain.

    Called by `kolm export` (and by `kolm pack` at fp16 to measure the reference K). Return None
    unless `request.backend` is yours. Write the payload into `request.out_dir` (a staging folder
    the core renames into place only when the whole export succeeded), using `request.work_dir`
    for scratch files, and return an `ExportResult` naming the payload files, the toolchain
    versions and the exact flags. Raise a `KolmError` subclass with a one-line message on failure.
    The core then measures K through `run` and stamps the manifest through `embed_manifest`.
    """


@hookspec(firstresult=True)
def embed_manifest(result: ExportResult, manifest_json: str) -> bool | None:
    """Write the RS-1 manifest (JSON, with the measured K) into the exported payload's metadata.

    Called by `kolm export` after `export` and K-scoring. Return True once `result.payload`
    carries it (GGUF metadata key `kolm.manifest`, ONNX `metadata_props`, safetensors metadata),
    None if `result.backend` is not yours. Rewrite atomically.
    """


@hookspec(firstresult=True)
def run(request: RunRequest) -> Session | None:
    """Open an exported payload for generation and scoring.

    Called by `kolm run`, `kolm verify` and the server. Return a `Session` if `request.backend`
    is yours, else None. Import the toolchain here, not at module import.
    """


@hookspec(firstresult=True)
def read_payload(request: RunRequest) -> PayloadFacts | None:
    """Read back what an exported payload says about itself, for `kolm verify`.

    Return a `PayloadFacts`: the manifest JSON embedded by `embed_manifest` (None if absent) and
    the tier its tensor types show (None if they match no tier), or None if `request.backend`
    is not yours. Must not trust `kolm-export.json`: read the payload files themselves.
    """


@hookspec(firstresult=True)
def bench(request: BenchRequest) -> BenchResult | None:
    """Measure prompt-processing and generation tokens/s, load time and peak RSS on this machine.

    Called by `kolm bench`. Return a `BenchResult` if `request.backend` is yours, else None.
    """
