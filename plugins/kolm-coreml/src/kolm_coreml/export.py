"""Core ML export: the artifact's Hugging Face model converted to a stateful `.mlpackage` by
coremltools (`convert.py`), its weights compressed with the tier recipe's options, and beside it the
artifact's config, tokenizer files and chat template, byte for byte, for the app that tokenizes.

The float16 package of the models converted last stays in `$KOLM_HOME/cache/coreml/` (`kolm.cache`:
one model unless KOLM_CACHE_MODELS says more), keyed by the artifact's payload hashes, the context
and the toolchain's versions: `kolm pack` converts once to measure the fp16 K, and each tier
exported after it compresses that package."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from kolm.api import ExportRequest, ExportResult, kolm_home, toolchain_versions
from kolm.cache import make_room, used
from kolm.errors import BackendError, UnsupportedModelError
from kolm.pack import MODEL_FILES
from kolm.plugin_data import read_data
from kolm.quiet import quiet

from kolm_coreml.convert import compress, context_length, convert
from kolm_coreml.package import PACKAGE, WEIGHT_THRESHOLD, spec_file

SIDE_FILES = tuple(name for name in MODEL_FILES if name != "model.safetensors.index.json")
"""The artifact's files copied beside the package: config, generation config, tokenizer, chat template."""


def require_toolchain(*modules: str) -> None:
    """One line naming the first missing module and backend.json's install."""
    read_data("kolm_coreml", "backend").require(*modules)


def payload_files(out_dir: Path) -> list[str]:
    """Every file under `out_dir`, relative, the package's model spec first."""
    main = spec_file(out_dir / PACKAGE).relative_to(out_dir.resolve()).as_posix()
    rest = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    return [main, *(name for name in rest if name != main)]


def link_or_copy(source: str, target: str) -> str:
    """Hard-link `source` as `target`, or copy it where the two are on different filesystems.
    Neither name is written again: coremltools only deletes its temporary package."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


def converted(request: ExportRequest, context: int):
    """The model's float16 stateful package from coremltools: the cached one if this artifact was
    converted lately, else a new conversion, which takes the place of the least recently used
    (`kolm.cache`) (an MLModel, not loaded)."""
    with quiet("coremltools"):
        import coremltools as ct

    versions = toolchain_versions("coremltools", "torch", "transformers")
    hashes = "".join(sorted(p.sha256 for p in request.manifest.payload))
    key = hashlib.sha256(f"{hashes}|{context}|{sorted(versions.items())}".encode()).hexdigest()[:32]
    cache = kolm_home() / "cache" / "coreml"
    package = cache / f"{key}.mlpackage"
    if package.is_dir():
        with request.steps("reusing the float16 package coremltools converted for this model"), quiet("coremltools"):
            return ct.models.MLModel(str(used(package)), skip_model_load=True)
    with request.steps(f"converting to a stateful Core ML program (context {context}) with coremltools"):
        try:
            with quiet("coremltools"):
                mlmodel = convert(request.model_dir, context)
        except (ValueError, KeyError, NotImplementedError) as exc:  # an op or config coremltools cannot take
            raise UnsupportedModelError(
                f"coremltools cannot convert {request.manifest.base}: {str(exc).splitlines()[0]}"
            ) from exc
        make_room(cache.glob("*.mlpackage") if cache.is_dir() else ())
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
        try:  # the converter's own package, linked: no second copy of the float16 weights
            shutil.copytree(mlmodel.package_path, staging / PACKAGE, copy_function=link_or_copy)
            os.replace(staging / PACKAGE, package)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return mlmodel


def export_coreml(request: ExportRequest) -> ExportResult:
    require_toolchain("coremltools", "torch", "transformers")
    import json

    options = request.recipe.options
    config = json.loads((request.model_dir / "config.json").read_text(encoding="utf-8"))
    context = context_length(config)
    mlmodel = converted(request, context)
    if options:
        with (
            request.steps(f"compressing the weights ({request.spelling}) with coremltools.optimize"),
            quiet("coremltools"),
        ):
            mlmodel = compress(mlmodel, {**options, "weight_threshold": WEIGHT_THRESHOLD}, workers=os.cpu_count() or 1)
    with request.steps(f"writing {PACKAGE}"):
        try:
            with quiet("coremltools"):
                mlmodel.save(str(request.out_dir / PACKAGE))
        except OSError as exc:
            raise BackendError(f"coremltools could not write {PACKAGE}: {exc}") from exc
    for name in SIDE_FILES:
        if (request.model_dir / name).is_file():
            shutil.copyfile(request.model_dir / name, request.out_dir / name)
    return ExportResult(
        payload=payload_files(request.out_dir),
        toolchain=toolchain_versions("kolm-coreml", "coremltools", "torch", "transformers", "numpy"),
        flags={
            "converter": "torch.jit.trace + coremltools.convert (stateful KV cache)",
            "minimum_deployment_target": "iOS18",
            "compute_precision": "float16",
            "context": context,
            **({**options, "weight_threshold": WEIGHT_THRESHOLD} if options else {}),
        },
    )
