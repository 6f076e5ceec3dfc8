"""`kolm verify`: six checks a reviewer can rerun on an export, each naming what it expected and
what it found (docs/architecture.md, "K-score and verify"). Nothing is taken from `kolm-export.json`
on trust: hashes are recomputed, the manifest and tensor types are read from the payload, and K is
measured again."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from kolm.api import BackendPlugin, ExportRequest, Session, Steps, silent
from kolm.artifact import Artifact, sha256_file
from kolm.checks import Check
from kolm.datamodel import KolmModel
from kolm.evalpack import EvalItem
from kolm.export import measure_fidelity
from kolm.kscore import Binder, score_pack
from kolm.manifest import ExportRecord, Fidelity, Manifest
from kolm.record import load_record, run_request
from kolm.reference import cached_reference
from kolm.signing import SIGNATURE, check_signature

if TYPE_CHECKING:
    from kolm.plugins import Registry


class Verification(KolmModel):
    """All six checks of one export against its source artifact (a seventh, the signature, with a
    public key), plus the regenerated binder and notes (e.g. a signature that was not checked)."""

    export: str
    against: str
    checks: list[Check]
    passed: bool
    binder: Binder | None = None
    notes: list[str] = []


def verify_export(
    registry: Registry,
    export: Path,
    artifact: Path,
    k_tolerance: float = 0.0,
    min_k: float = 0.85,
    max_drop_points: float = 5.0,
    steps: Steps = silent,
    public_key: Path | None = None,
) -> Verification:
    """The six checks; with `public_key`, check 7 (the signature, kolm.signing) too."""
    folder, record = load_record(export)
    notes: list[str] = []
    signature = None  # checked first: a missing key or toolchain fails before K is measured
    if public_key is not None:
        signature = check_signature(folder, public_key)
    elif (folder / SIGNATURE).is_file():
        notes.append(f"{SIGNATURE} present but not checked: give --key PUBLIC_KEY.pem to check the signature")
    owner = registry.backend(record.backend)
    request = run_request(folder, record)
    facts = owner.read_payload(request)
    checks: list[Check] = []

    def check(name: str, passed: bool, expected: str, found: str) -> None:
        checks.append(Check(number=len(checks) + 1, name=name, passed=passed, expected=expected, found=found))

    embedded = _embedded_manifest(facts.manifest_json)
    manifest = embedded if isinstance(embedded, Manifest) else record.manifest
    check(
        "manifest is valid RS-1",
        isinstance(embedded, Manifest) and embedded == record.manifest,
        "an RS-1 manifest in the payload, equal to kolm-export.json's",
        "equal"
        if isinstance(embedded, Manifest) and embedded == record.manifest
        else "differs from kolm-export.json"
        if isinstance(embedded, Manifest)
        else embedded,
    )

    with steps("recomputing the payload's SHA-256") as advance:
        found = {
            p.path: sha256_file(folder / p.path, advance) if (folder / p.path).is_file() else "missing"
            for p in record.payload
        }
    bad = [p for p in record.payload if found[p.path] != p.sha256]
    check(
        "payload SHA-256 matches",
        not bad,
        ", ".join(f"{p.path} {p.sha256[:16]}…" for p in (bad or record.payload)),
        ", ".join(f"{p.path} {found[p.path][:16]}…" for p in (bad or record.payload)),
    )

    with Artifact(artifact) as art:
        pack = art.read(art.manifest.eval_pack.path)
        items = art.eval_items()
        source = art.manifest
    pack_sha = hashlib.sha256(pack).hexdigest()
    check(
        "eval pack hash matches",
        pack_sha == manifest.eval_pack.sha256 == source.eval_pack.sha256,
        f"{manifest.eval_pack.sha256[:16]}… (export) = {source.eval_pack.sha256[:16]}… (artifact manifest)",
        f"{pack_sha[:16]}… ({artifact.name}:{source.eval_pack.path})",
    )

    wanted = f"{manifest.quant}, recipe {manifest.recipe}" if manifest.recipe else manifest.quant
    shown = f"{facts.tier}, recipe {facts.recipe}" if facts.tier and facts.recipe else facts.tier or "no tier"
    check(
        "quant tier matches the tensor types",
        facts.tier == manifest.quant and manifest.recipe in (None, facts.recipe),
        f"{wanted} (manifest)",
        f"{shown} ({facts.types})",
    )

    binder = None
    if (not_run := owner.no_runtime) is not None:  # two checks that cannot run here, failed, never skipped
        check("K recomputed matches the recorded K", False, "K measured again", f"not run: {not_run}")
        check("K at or above the gate, drop within tolerance", False, f"K ≥ {min_k:.2f}", f"not run: {not_run}")
    else:
        with owner.run(request) as session:
            with steps(f"measuring K on {len(items)} eval items") as advance:
                measured = score_pack(session, items, progress=advance)
            fidelity = None if manifest.quant == "fp16" else _fidelity(owner, artifact, record, session, items, steps)
        recorded = manifest.k_score
        check(
            "K recomputed matches the recorded K",
            recorded is not None and abs(measured.k - recorded) <= k_tolerance,
            f"{recorded if recorded is None else f'{recorded:.4f}'} ± {k_tolerance:g}",
            f"{measured.k:.4f}",
        )
        reference = source.k_score_fp16_reference
        drop = None if reference is None else 100 * (reference - measured.k)
        check(
            "K at or above the gate, drop within tolerance",
            measured.k >= min_k and drop is not None and drop <= max_drop_points,
            f"K ≥ {min_k:.2f}, drop ≤ {max_drop_points:g} points vs fp16",
            f"K {measured.k:.3f}, drop {'unknown (no fp16 reference)' if drop is None else f'{drop:.1f} points'}",
        )
        binder = Binder.of(measured, fidelity, record.backend, session, record.lockfile.toolchain, reference)

    if signature is not None:
        checks.append(signature.model_copy(update={"number": len(checks) + 1}))
    return Verification(
        export=str(folder),
        against=str(artifact),
        checks=checks,
        passed=all(c.passed for c in checks),
        binder=binder,
        notes=notes,
    )


def _fidelity(
    owner: BackendPlugin, artifact: Path, record: ExportRecord, session: Session, items: list[EvalItem], steps: Steps
) -> Fidelity:
    """Fidelity of the payload to the fp16 export of the artifact's weights (the cached one, or one
    made afresh from the artifact); the binder is regenerated."""
    with tempfile.TemporaryDirectory(prefix=".kolm-verify-") as work, Artifact(artifact) as art:
        model_dir = Path(work) / "model"
        if cached_reference(owner, art.manifest) is None:
            with steps("extracting the artifact's weights") as advance:
                art.extract_model(model_dir, advance)
        request = ExportRequest(
            manifest=art.manifest,
            model_dir=model_dir,
            tier=record.tier,
            recipe=owner.recipe(record.tier, record.manifest.recipe),
            device=None,
            out_dir=Path(work),
            work_dir=Path(work),
            steps=steps,
        )
        return measure_fidelity(owner, request, session, items)


def _embedded_manifest(raw: str | None) -> Manifest | str:
    """The embedded manifest, or a one-line reason it is not a valid one."""
    if raw is None:
        return "no manifest embedded in the payload"
    try:
        return Manifest.model_validate(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        return f"not valid RS-1 ({str(exc).splitlines()[0]})"
