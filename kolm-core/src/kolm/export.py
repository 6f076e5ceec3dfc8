"""The pipeline `kolm export` runs around a backend: check the artifact, convert (backend), measure
K on the payload (through the backend's `Session`), embed the manifest (backend), hash, and write
`kolm-export.json`, all in a staging folder that replaces the output only when everything succeeded."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from kolm import __version__, history
from kolm.api import BackendPlugin, ExportRequest, ExportResult, RunRequest, Session, Steps, silent
from kolm.artifact import MANIFEST, Artifact, payload_entries
from kolm.atomic import atomic_dir, scratch_dir
from kolm.datamodel import KolmModel, utc_now
from kolm.devices import DeviceProfile
from kolm.errors import GateError, OutputError, UnsupportedModelError
from kolm.evalpack import EvalItem
from kolm.kscore import Binder, score_pack
from kolm.manifest import ExportRecord, Fidelity, KRecord, Lockfile, SizeCheck
from kolm.modelspec import resolve_model
from kolm.quant import DEFAULT_MAX_K_DROP, Tier
from kolm.record import BINDER, RECORD, load_record
from kolm.reference import fp16_reference

if TYPE_CHECKING:
    from kolm.plugins import Registry


def export_artifact(
    registry: Registry,
    artifact: Path,
    device: DeviceProfile,
    tier: Tier,
    backend: str,
    out_dir: Path,
    forecast_bytes: int,
    read_per_token_bytes: int,
    steps: Steps = silent,
    score: bool = True,
    max_drop_points: float | None = DEFAULT_MAX_K_DROP,
    recipe_name: str | None = None,
) -> ExportRecord:
    """Run the whole export pipeline with the backend's recipe `recipe_name` for `tier` (without one,
    the first of the tier's recipes the backend takes for this model: `BackendPlugin.recipe_for`);
    the output folder appears only if every step succeeded.

    With `max_drop_points`, a K more than that many points below the fp16 reference fails the
    export (nothing is written); None allows any drop (`--allow-drop`)."""
    owner = registry.backend(backend)
    owner.recipe(tier, recipe_name)  # an unknown tier or recipe is refused before the artifact is read
    owner.refuse_missing("export", "export")
    not_measured = owner.no_runtime if score else None
    score = score and not_measured is None  # no runtime: K is recorded as not measured, never copied
    if not out_dir.parent.is_dir():
        raise OutputError(f"output folder {out_dir.parent} does not exist")
    spec = resolve_model(str(artifact))
    recipe = owner.recipe_for(spec, tier, device, recipe_name)
    if refusal := owner.cannot_export(spec, tier, device, recipe):
        raise UnsupportedModelError(f"{backend} cannot export {spec.name}: {refusal}")
    with Artifact(artifact) as art:
        manifest = art.manifest
        items = art.eval_items() if score else []
        input_sha = hashlib.sha256(art.read(MANIFEST)).hexdigest()
        with (
            scratch_dir(out_dir) as work,
            atomic_dir(out_dir) as staging,
        ):
            with steps("extracting weights, checking their SHA-256") as advance:
                model_dir = art.extract_model(Path(work) / "model", advance)
            request = ExportRequest(
                manifest=manifest,
                model_dir=model_dir,
                tier=tier,
                recipe=recipe,
                device=device,
                out_dir=staging,
                work_dir=Path(work),
                steps=steps,
            )
            result, k, binder = convert_and_measure(owner, request, items)
            if k and k.drop_points is not None and max_drop_points is not None and k.drop_points > max_drop_points:
                raise GateError(
                    f"K {k.score:.3f} is {k.drop_points:.1f} points below the fp16 reference "
                    f"{k.fp16_reference:.3f}, beyond --max-k-drop {max_drop_points:g}; "
                    "--allow-drop exports anyway"
                )
            if binder:
                (staging / BINDER).write_text(binder.model_dump_json(indent=2) + "\n", encoding="utf-8")
            embedded = manifest.model_copy(
                update={"quant": tier, "recipe": recipe.name, "k_score": k.score if k else None}
            )
            owner.embed_manifest(staging, result.payload, embedded.to_json())
            files = [(name, staging / name) for name in result.payload]
            with steps("hashing the payload") as advance:
                hashed = {p.path: p for p in payload_entries(files, advance)}
            payload = [hashed[name] for name in result.payload]  # the backend's order: main file first
            actual = sum(p.size for p in payload)
            record = ExportRecord(
                manifest=embedded,
                backend=backend,
                device=device.name,
                tier=tier,
                spelling=recipe.spelling,
                payload=payload,
                k=k,
                k_not_measured=not_measured,
                size_check=SizeCheck(
                    forecast_bytes=forecast_bytes,
                    actual_bytes=actual,
                    error_percent=round(100 * (forecast_bytes - actual) / actual, 4),
                    read_per_token_bytes=read_per_token_bytes,
                ),
                lockfile=Lockfile(
                    input=artifact.name,
                    input_manifest_sha256=input_sha,
                    recipe=recipe.name,
                    toolchain={"kolm-core": __version__, **result.toolchain},
                    flags=result.flags,
                    seed=0,
                ),
            )
            (staging / RECORD).write_text(record.to_json() + "\n", encoding="utf-8")
    if record.k is not None:
        history.append(
            "k",
            history.KEntry(
                model=manifest.base,
                tier=tier,
                backend=backend,
                recipe=recipe.name,
                eval_pack=manifest.eval_pack.sha256,
                k=record.k,
                export=str(out_dir.resolve()),
                measured_at=utc_now(),
            ),
        )
    return record


def convert_and_measure(
    owner: BackendPlugin, request: ExportRequest, items: list[EvalItem]
) -> tuple[ExportResult, KRecord | None, Binder | None]:
    """Convert with the backend, then (given eval items) measure K on the payload it wrote,
    through the backend's own `Session`; the binder holds every item's output and score."""
    result = owner.export(request)
    if not items:
        return result, None, None
    with owner.run(RunRequest(path=request.out_dir, payload=result.payload)) as session:
        with request.steps(f"measuring K on {len(items)} eval items") as advance:
            measured = score_pack(session, items, progress=advance)
        fidelity = None if request.tier == "fp16" else measure_fidelity(owner, request, session, items)
    reference = request.manifest.k_score_fp16_reference
    drop = None if reference is None else round(100 * (reference - measured.k), 4)
    binder = Binder.of(measured, fidelity, owner.name, session, result.toolchain, reference)
    return (
        result,
        KRecord(
            score=measured.k,
            points=measured.points,
            items=measured.n,
            fp16_reference=reference,
            drop_points=drop,
            runtime=binder.runtime,
            fidelity=fidelity,
        ),
        binder,
    )


def measure_fidelity(owner: BackendPlugin, request: ExportRequest, session: Session, items: list[EvalItem]) -> Fidelity:
    """Compare the payload's token distributions over the eval prompts with those of the fp16
    export of the same weights by the same backend (`kolm.reference`: made once, then cached)."""
    with request.steps("exporting the fp16 reference for fidelity"):
        folder, payload = fp16_reference(owner, request)
    with (
        owner.run(RunRequest(path=folder, payload=payload)) as ref_session,
        request.steps(f"comparing token distributions with fp16 on {len(items)} prompts"),
    ):
        return session.fidelity(ref_session, [item.prompt for item in items])


class Reproduction(KolmModel):
    """`kolm export --check`: a fresh export compared with an existing one, file by file."""

    same: bool
    differences: list[str]
    lockfile_differences: list[str]


def check_reproducible(
    registry: Registry,
    artifact: Path,
    device: DeviceProfile,
    tier: Tier,
    backend: str,
    existing: Path,
    steps: Steps = silent,
) -> Reproduction:
    """Re-export into a temporary folder (same flags) and diff payload hashes and lockfiles."""
    _, before = load_record(existing)
    with scratch_dir(existing, "check") as work:
        again = export_artifact(
            registry,
            artifact,
            device,
            tier,
            backend,
            Path(work) / "again",
            before.size_check.forecast_bytes,
            before.size_check.read_per_token_bytes,
            steps,
            score=before.k is not None,
            max_drop_points=None,
            recipe_name=before.manifest.recipe,
        )
    old = {p.path: p.sha256 for p in before.payload}
    new = {p.path: p.sha256 for p in again.payload}
    differences = [
        f"{name}: {old.get(name, 'missing')[:16]} != {new.get(name, 'missing')[:16]}"
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    ]
    lock_old, lock_new = before.lockfile.model_dump(), again.lockfile.model_dump()
    lock_diff = [f"{key}: {lock_old[key]} != {lock_new[key]}" for key in lock_old if lock_old[key] != lock_new[key]]
    return Reproduction(same=not differences, differences=differences, lockfile_differences=lock_diff)
