"""`kolm pack`: build an RS-1 artifact from a Hugging Face model folder and an eval pack."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kolm import __version__
from kolm.api import ExportRequest, RunRequest, Steps, silent
from kolm.artifact import EVAL_PACK, MODEL_DIR, PICKLE_SUFFIXES, folder_inventory, payload_entries, write_artifact
from kolm.atomic import scratch_dir
from kolm.errors import GateError, UnsupportedModelError, UsageError
from kolm.evalpack import EvalItem, load_eval_pack, pack_sha256, read_pack_text
from kolm.kscore import score_pack
from kolm.manifest import EvalPackRef, Manifest
from kolm.modelspec import resolve_model
from kolm.reference import fp16_reference

if TYPE_CHECKING:
    from kolm.plugins import Registry

DEFAULT_MIN_K = 0.85


# The files of a Hugging Face folder that make up a model; anything else (READMEs, images,
# optimizer states) is left out of the artifact.
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)


def model_files(folder: Path) -> list[Path]:
    """The model's files in `folder`, refusing a folder whose weights are pickles."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    if not (folder / "config.json").is_file():
        raise UnsupportedModelError(f"{folder}: no config.json; not a Hugging Face model folder")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickles = [p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES)]
        if pickles:
            raise UnsupportedModelError(
                f"{folder} holds pickle weights ({pickles[0]}); kolm loads safetensors only — "
                "save the model with safe_serialization=True"
            )
        raise UnsupportedModelError(f"{folder}: no *.safetensors weights")
    return sorted([*(folder / n for n in MODEL_FILES if (folder / n).is_file()), *weights])


def pack_folder(
    folder: Path,
    eval_pack: Path,
    base: str,
    out: Path,
    license: str,
    steps: Steps = silent,
    registry: Registry | None = None,
    min_k: float = DEFAULT_MIN_K,
) -> tuple[Manifest, str]:
    """Write `out` (.kolm) from `folder` and `eval_pack`; returns the manifest written and a line
    saying how K was measured, or why it was not.

    With a `registry` whose backends can run here, the fp16 K is measured first and an
    artifact below `min_k` is refused before anything is written.
    """
    files = [(MODEL_DIR + p.name, p) for p in model_files(folder)]
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        arch = config["architectures"][0]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise UnsupportedModelError(f"{folder}/config.json: no architectures entry") from exc
    items = load_eval_pack(eval_pack)
    pack_text = read_pack_text(eval_pack)
    with steps("hashing weights") as advance:
        payload = payload_entries(files, advance)
    manifest = Manifest(
        base=base,
        arch=arch,
        params=folder_inventory(folder).params,
        quant="fp16",
        eval_pack=EvalPackRef(path=EVAL_PACK, sha256=pack_sha256(eval_pack), items=len(items)),
        payload=payload,
        created_by=f"kolm {__version__}",
        license=license,
    )
    note = "not measured: no installed backend runs here (pip install kolm-gguf)"
    if registry is not None:
        try:
            k, backend, refusals = reference_k(registry, folder, manifest, items, steps)
        except UnsupportedModelError as exc:
            if min_k > 0:
                raise GateError(f"cannot measure the fp16 K ({exc}); --min-k 0 packs without the gate") from exc
            k, note, refusals = None, f"not measured: {exc}", getattr(exc, "refusals", {})
        manifest = manifest.model_copy(update={"refusals": refusals})
        if k is not None:
            if k < min_k:
                raise GateError(f"fp16 K is {k:.3f}, below the compile gate {min_k:.2f} (--min-k); nothing written")
            manifest = manifest.model_copy(update={"k_score": k, "k_score_fp16_reference": k})
            note = f"{k:.3f} (fp16 through {backend}, gate {min_k:.2f})"
    with steps(f"writing {out.name}"):
        write_artifact(out, manifest, files, pack_text)
    return manifest, note


class NoReferenceBackend(UnsupportedModelError):
    """Every installed backend that could measure the fp16 K refused the model; `refusals` holds
    their reasons by backend."""

    def __init__(self, refusals: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in refusals.items()))
        self.refusals = refusals


def reference_k(
    registry: Registry, folder: Path, manifest: Manifest, items: list[EvalItem], steps: Steps
) -> tuple[float | None, str, dict[str, str]]:
    """fp16 K of `folder`, the backend that measured it and the backends that refused the model
    (by name, with their reasons): the first installed backend, by name, that can both export and
    run here and neither refuses the model up front nor fails to convert it (so the same set of
    plugins always picks the same backend); (None, "", {}) when there is none. When every such
    backend refuses the model, `NoReferenceBackend` lists their reasons."""
    spec = resolve_model(str(folder))
    refusals: dict[str, str] = {}
    for name, owner in sorted(registry.backends().items()):
        if not (
            "fp16" in owner.tiers
            and all(owner.declared.toolchain_status().values())
            and owner.can_export
            and owner.implements("run")
        ):
            continue
        if refusal := owner.cannot_export(spec, "fp16", None):
            refusals[name] = refusal
            continue
        with tempfile.TemporaryDirectory(prefix=".kolm-reference-") as work:
            request = ExportRequest(
                manifest=manifest,
                model_dir=folder,
                tier="fp16",
                recipe=owner.recipe("fp16"),
                device=None,
                out_dir=Path(work),
                work_dir=Path(work),
                steps=steps,
            )
            try:
                reference, payload = fp16_reference(owner, request)
            except UnsupportedModelError as exc:  # the toolchain refused it on reading it
                refusals[name] = str(exc)
                continue
        with owner.run(RunRequest(path=reference, payload=payload)) as session:
            with steps(f"measuring K on {len(items)} eval items") as advance:
                measured = score_pack(session, items, progress=advance)
        return measured.k, name, refusals
    if refusals:
        raise NoReferenceBackend(refusals)
    return None, "", {}


def pack_import(
    registry: Registry,
    source: Path,
    eval_pack: Path,
    base: str | None,
    out: Path,
    license: str,
    steps: Steps = silent,
    min_k: float = DEFAULT_MIN_K,
) -> tuple[Manifest, str]:
    """`kolm pack --from-gguf`: a plugin turns `source` into a Hugging Face folder, then pack it."""
    if not source.is_file():
        raise UsageError(f"{source}: no such file")
    with scratch_dir(out, "import") as work:
        name = registry.hook.import_weights(source=source, out_dir=Path(work), steps=steps)
        if name is None:
            raise UsageError(f"no installed plugin imports {source.name}; GGUF files need kolm-gguf")
        return pack_folder(Path(work), eval_pack, base or name, out, license, steps, registry, min_k)
