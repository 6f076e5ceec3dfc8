"""Which models mlx-lm can load, read from the installed mlx-lm itself without importing it (mlx would
come with it): `mlx_lm.utils._get_classes` maps config.json's `model_type` through MODEL_REMAPPING
(and MODEL_ARCHITECTURE_REMAPPING) to a module `mlx_lm/models/<type>.py`."""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

from kolm.api import ModelSpec


@cache
def mlx_lm_source() -> tuple[Path, dict, dict] | None:
    """(models folder, MODEL_REMAPPING, MODEL_ARCHITECTURE_REMAPPING) of the installed mlx-lm, or None."""
    spec = importlib.util.find_spec("mlx_lm")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(spec.submodule_search_locations[0])
    tables = {}
    for node in ast.parse((package / "utils.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("MODEL_REMAPPING", "MODEL_ARCHITECTURE_REMAPPING"):
                tables[node.targets[0].id] = ast.literal_eval(node.value)
    return package / "models", tables.get("MODEL_REMAPPING", {}), tables.get("MODEL_ARCHITECTURE_REMAPPING", {})


def cannot_load(spec: ModelSpec) -> str | None:
    """Why `spec` cannot go through mlx-lm: no `model_type`, one it has no module for, or a mixture of
    experts (which kolm cannot forecast or check on MLX yet). None when it can, or when mlx-lm is not
    installed here (the export then names the install)."""
    if spec.active_params < spec.inventory.params:
        return (
            "kolm's MLX size model and tier check do not cover a mixture of experts yet"
            " (mlx-lm stacks the experts and keeps each router at 8 bits)"
        )
    source = mlx_lm_source()
    if source is None:
        return None
    model_type = spec.config.get("model_type")
    if not model_type:
        return f"config.json has no model_type ({spec.arch}); mlx-lm chooses its model by it"
    models, remapping, by_architecture = source
    resolved = next(
        (
            by_architecture[(model_type, a)]
            for a in spec.config.get("architectures") or ()
            if (model_type, a) in by_architecture
        ),
        remapping.get(model_type, model_type),
    )
    if not (models / f"{resolved}.py").is_file():
        return f"mlx-lm has no model for model_type {model_type!r} ({spec.arch})"
    return None
