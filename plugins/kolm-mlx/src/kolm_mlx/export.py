"""MLX export: `mlx_lm.convert` (its Python API, in this process) from the artifact's Hugging Face
folder to an mlx-lm model folder, with the tier recipe's options as its keyword arguments."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from kolm.api import ExportRequest, ExportResult, toolchain_versions
from kolm.errors import BackendError, UnsupportedModelError

from kolm_mlx.quant_plan import convert_arguments
from kolm_mlx.runtime import import_mlx_lm

WEIGHTS = "model.safetensors"


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

    flags = request.recipe.options
    target = request.work_dir / f"mlx-{request.tier}"
    with request.steps(f"converting with mlx_lm.convert ({request.spelling})"):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # its [INFO] lines would mix with `--json`
                convert(str(request.model_dir), str(target), **convert_arguments(flags))
        except (ValueError, KeyError) as exc:  # the model: an unknown type, a config field mlx-lm needs
            raise UnsupportedModelError(f"mlx_lm.convert cannot convert {request.manifest.base}: {exc!r}") from exc
        except OSError as exc:
            raise BackendError(f"mlx_lm.convert failed on {request.manifest.base}: {exc}") from exc
    for path in target.iterdir():
        path.replace(request.out_dir / path.name)
    target.rmdir()
    return ExportResult(
        payload=payload_files(request.out_dir),
        toolchain=toolchain_versions("kolm-mlx", "mlx", "mlx-lm", "transformers"),
        flags={"converter": "mlx_lm.convert.convert", **flags},
    )
