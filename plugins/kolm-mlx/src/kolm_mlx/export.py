"""MLX export: `mlx_lm.convert` (its Python API, in this process) from the artifact's Hugging Face
folder to an mlx-lm model folder: float16, or affine 8/4/3-bit with group size 64."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from kolm.errors import BackendError
from kolm.export import ExportRequest, ExportResult, toolchain_versions

from kolm_mlx.quant_plan import BITS, GROUP_SIZE
from kolm_mlx.runtime import import_mlx_lm

WEIGHTS = "model.safetensors"


def convert_flags(tier: str) -> dict[str, str | int | bool]:
    """The exact `mlx_lm.convert` arguments for a tier (as `mlx_lm.convert` spells them on its CLI)."""
    flags: dict[str, str | int | bool] = {"dtype": "float16", "quantize": tier in BITS}
    if tier in BITS:
        flags.update(q_bits=BITS[tier], q_group_size=GROUP_SIZE, q_mode="affine")
    return flags


def payload_files(folder: Path) -> list[str]:
    """Every file of the folder: the (first) weights file first, the rest in sorted order."""
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    weights = WEIGHTS if WEIGHTS in names else next((n for n in names if n.endswith(".safetensors")), None)
    if weights is None:
        raise BackendError(f"mlx_lm.convert wrote no safetensors into {folder}")
    return [weights, *(n for n in names if n != weights)]


def export_mlx(request: ExportRequest) -> ExportResult:
    import_mlx_lm()
    from mlx_lm.convert import convert

    flags = convert_flags(request.tier)
    target = request.work_dir / f"mlx-{request.tier}"
    with request.steps(f"converting with mlx_lm.convert ({request.spelling})"):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # its [INFO] lines would mix with `--json`
                convert(str(request.model_dir), str(target), **flags)
        except (ValueError, KeyError, OSError) as exc:
            raise BackendError(f"mlx_lm.convert failed on {request.manifest.base}: {exc}") from exc
    for path in target.iterdir():
        path.replace(request.out_dir / path.name)
    target.rmdir()
    return ExportResult(
        backend=request.backend,
        out_dir=request.out_dir,
        payload=payload_files(request.out_dir),
        toolchain=toolchain_versions("kolm-mlx", "mlx", "mlx-lm", "transformers"),
        flags={"converter": "mlx_lm.convert.convert", **flags},
    )
