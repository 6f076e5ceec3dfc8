"""`kolm sign` and check 7 of `kolm verify`: signatures made with OpenSSF model-signing
(sigstore/model-transparency) and a local elliptic-curve key or certificate, entirely offline: no
Sigstore keyless flow, no OIDC, no transparency log.

A signature covers `kolm-export.json`, the payload files it lists and every other file of the export
folder (SHA-256 of each), all but `binder.json` and the signature itself; a file added afterwards
fails the check, as a changed or missing one does. It is a Sigstore bundle (DSSE envelope, in-toto
statement) written to `EXPORT_DIR/kolm.sig`. `kolm bundle` signs its lock the same way
(`sign_files`, `verify_files`).

model-signing is an optional extra (`pip install 'kolm-core[signing]'`), imported only here, only
when signing or checking."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from types import ModuleType

from kolm.artifact import sha256_file
from kolm.atomic import atomic_file
from kolm.checks import Check
from kolm.datamodel import KolmModel
from kolm.errors import ArtifactError, ToolchainMissingError, UsageError
from kolm.manifest import ExportRecord
from kolm.record import BINDER, RECORD, load_record

SIGNATURE = "kolm.sig"
INSTALL = "pip install 'kolm-core[signing]'"
CHECK_NAME = "signature"
MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"  # what model-signing 1.x writes
PAYLOAD_TYPE = "application/vnd.in-toto+json"


class Signed(KolmModel):
    """What `kolm sign` wrote: the signature file, the files it covers, and who signed."""

    signature: str
    files: list[str]
    signer: str


def covered_files(folder: Path, record: ExportRecord) -> list[str]:
    """The files a signature covers: the record, the payload files it lists, then every other file in
    the export folder (a browser bundle's page, a device script) but the signature itself and
    binder.json (written by `kolm verify`). At verify time a file added since signing is then one
    the signature does not cover, and check 7 fails: nothing unsigned rides along."""
    names = [RECORD, *(p.path for p in record.payload)]
    for name in names:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or "\\" in name:
            raise ArtifactError(f"{RECORD}: unsafe payload path {name!r}")
    others = sorted(
        rel
        for p in folder.rglob("*")
        if (p.is_file() or p.is_symlink()) and (rel := p.relative_to(folder).as_posix()) not in (SIGNATURE, BINDER)
    )
    return list(dict.fromkeys([*names, *others]))


def sign_export(export: Path, private_key: Path, certificate: Path | None = None, chain: Sequence[Path] = ()) -> Signed:
    """Sign an export folder with an EC private key (PEM), or with a signing certificate for that key
    plus the certificate(s) that issued it; the signature replaces `EXPORT_DIR/kolm.sig` atomically."""
    folder, record = load_record(export)
    _check_signer(private_key, certificate, chain)
    covered = covered_files(folder, record)
    for p in record.payload:
        file = folder / p.path
        if not file.is_file() or sha256_file(file) != p.sha256:
            raise ArtifactError(
                f"{file}: {'missing' if not file.is_file() else 'SHA-256 differs from ' + RECORD}; "
                "refusing to sign an export that no longer matches its record"
            )
    sign_files(folder, covered, folder / SIGNATURE, private_key, certificate, chain)
    return Signed(signature=str(folder / SIGNATURE), files=covered, signer=_signer(private_key, certificate))


def _check_signer(private_key: Path, certificate: Path | None, chain: Sequence[Path]) -> None:
    if certificate is not None and not chain:  # model-signing needs at least one (issue #382)
        raise UsageError("--cert needs --chain: the CA or intermediate certificate(s) that issued it (PEM)")
    for path in (private_key, certificate, *chain):
        if path is not None and not path.is_file():
            raise UsageError(f"{path}: no such file")


def sign_files(
    folder: Path,
    covered: list[str],
    signature: Path,
    private_key: Path,
    certificate: Path | None = None,
    chain: Sequence[Path] = (),
) -> None:
    """Sign `covered` (paths relative to `folder`) with a key, or a certificate and its chain, into
    `signature` (written atomically; outside the signed set): `kolm sign`'s and `kolm bundle`'s."""
    _check_signer(private_key, certificate, chain)
    ms = _model_signing()
    config = ms.signing.Config()
    try:
        if certificate is None:
            config.use_elliptic_key_signer(private_key=private_key)
        else:
            config.use_certificate_signer(
                private_key=private_key, signing_certificate=certificate, certificate_chain=list(chain)
            )
    except (ValueError, TypeError, AttributeError) as exc:  # bad PEM, encrypted, not EC, cert/key mismatch
        raise UsageError(
            f"cannot sign with {private_key}{'' if certificate is None else ' and ' + str(certificate)}: "
            f"{_one_line(exc)} (need an unencrypted P-256/P-384/P-521 private key in PEM)"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="kolm-sign-") as tmp:  # outside the folder: nothing new to ignore
        unsigned = Path(tmp) / signature.name
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                config.set_hashing_config(_hashing(ms, folder, covered)).sign(folder, unsigned)
        except ValueError as exc:  # e.g. a symlink in the folder
            raise ArtifactError(f"cannot sign {folder}: {_one_line(exc)}") from exc
        with atomic_file(signature) as part:
            shutil.copyfile(unsigned, part)


def check_signature(export: Path, trust: Path) -> Check:
    """Check 7: `kolm.sig` verifies with `trust` (an EC public key PEM, or the CA certificate(s) a
    certificate-signed export must chain to) and covers the current record and payload, unchanged."""
    folder, record = load_record(export)
    covered = covered_files(folder, record)
    problem = verify_files(folder, covered, folder / SIGNATURE, trust)  # a bad key file: UsageError
    if problem is not None and not (folder / SIGNATURE).is_file():
        problem += f"; run kolm sign {folder} --key PRIVATE_KEY.pem"
    return Check(
        number=7,
        name=CHECK_NAME,
        passed=problem is None,
        expected=f"{SIGNATURE} by {_who(trust)}, over {', '.join(covered)}",
        found=problem or f"valid; {len(covered)} files unchanged since signing",
    )


def verify_files(folder: Path, covered: list[str], signature: Path, trust: Path) -> str | None:
    """None when `signature` verifies with `trust` (an EC public key or CA certificate(s), PEM) and
    covers exactly `covered` (paths relative to `folder`), unchanged; otherwise why not, in one line."""
    config, is_ca = _verifier(trust)
    if not signature.is_file():
        return f"no signature ({signature.name} missing)"
    if is_ca and _material(signature) == "publicKey":
        return f"{signature.name} was signed with a bare key, not a certificate; give its public key as --key"
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # model-signing prints warnings to stdout
            config.set_hashing_config(_hashing(_model_signing(), folder, covered)).verify(folder, signature)
    except Exception as exc:  # noqa: BLE001 - whatever the reason, the signature did not verify; say why
        return _why(exc, folder, signature, covered, trust)
    signed = _signed(signature) or {}
    if set(signed) != set(covered):  # a signature made with the right key but over other files
        return f"valid, but it covers {', '.join(sorted(signed)) or 'nothing'}, not {', '.join(covered)}"
    return None


def _verifier(trust: Path):
    """model-signing's verifying config for `trust`, and whether `trust` is a CA certificate."""
    if not trust.is_file():
        raise UsageError(f"{trust}: no such key file")
    ms = _model_signing()
    is_ca = b"-----BEGIN CERTIFICATE-----" in trust.read_bytes()
    config = ms.verifying.Config()
    try:
        if is_ca:
            config.use_certificate_verifier(certificate_chain=[trust])
        else:
            config.use_elliptic_key_verifier(public_key=trust)
    except (ValueError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"{trust}: not an EC public key (P-256/P-384/P-521) or CA certificate in PEM ({_one_line(exc)})"
        ) from exc
    return config, is_ca


def _who(trust: Path) -> str:
    if b"-----BEGIN CERTIFICATE-----" in trust.read_bytes():
        return f"a certificate chaining to {trust.name}"
    return f"{trust.name} (key {_key_id(trust)})"


def canonical_signature(raw: bytes) -> bytes:
    """The one byte form of a model-signing signature that a kolm bundle holds: compact JSON, keys
    sorted, base64 canonical, in the layout model-signing's key and certificate signers write. Any
    other spelling of a signature (re-spaced JSON, base64 with stray bits, a renamed or added field
    model-signing would skip) raises ArtifactError, so not one byte of it can change unnoticed."""
    try:
        doc = json.loads(raw)
        envelope, material = doc["dsseEnvelope"], doc["verificationMaterial"]
        (signature,) = envelope["signatures"]
        layout = (
            set(doc) == {"mediaType", "verificationMaterial", "dsseEnvelope"}
            and doc["mediaType"] == MEDIA_TYPE
            and set(envelope) == {"payload", "payloadType", "signatures"}
            and envelope["payloadType"] == PAYLOAD_TYPE
            and set(signature) == {"sig", "keyid"}
            and signature["keyid"] == ""
            and material.get("tlogEntries") == []
        )
        if set(material) == {"publicKey", "tlogEntries"}:
            hint = material["publicKey"]
            layout = layout and set(hint) == {"hint"} and re.fullmatch(r"[0-9a-f]{64}", hint["hint"]) is not None
        elif set(material) == {"x509CertificateChain", "tlogEntries"}:
            chain = material["x509CertificateChain"]
            certificates = chain["certificates"]
            layout = layout and set(chain) == {"certificates"} and all(set(c) == {"rawBytes"} for c in certificates)
            for certificate in certificates:
                certificate["rawBytes"] = _base64(certificate["rawBytes"])
        else:
            layout = False
        if not layout:
            raise ValueError("not the layout model-signing writes")
        envelope["payload"], signature["sig"] = _base64(envelope["payload"]), _base64(signature["sig"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # binascii.Error is a ValueError
        raise ArtifactError(f"not a model-signing signature kolm writes ({_one_line(exc)})") from exc
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _base64(text: str) -> str:
    return base64.b64encode(base64.b64decode(text, validate=True)).decode()


def _model_signing() -> ModuleType:
    try:
        import model_signing.hashing
        import model_signing.signing
        import model_signing.verifying
    except ImportError as exc:
        raise ToolchainMissingError(
            f"signing needs model-signing, which does not import here (no module {exc.name or exc}); {INSTALL}"
        ) from exc
    return model_signing


def _hashing(ms: ModuleType, folder: Path, covered: list[str]):
    """model-signing's file-by-file SHA-256, told to ignore every file in the folder but `covered`."""
    others = sorted(
        rel for p in folder.rglob("*") if p.is_file() and (rel := p.relative_to(folder).as_posix()) not in covered
    )
    return (
        ms.hashing.Config()
        .use_file_serialization(hashing_algorithm="sha256")
        .set_ignored_paths(paths=others, ignore_git_paths=False)
    )


def _why(exc: Exception, folder: Path, signature: Path, covered: list[str], trust: Path) -> str:
    """One line saying why a signature did not verify."""
    from cryptography.exceptions import InvalidSignature

    message = _one_line(exc)
    if isinstance(exc, InvalidSignature):
        return f"{signature.name} does not verify with {trust.name} (forged, damaged, or another key)"
    if message.startswith("Key mismatch"):
        return f"signed by another key, not {trust.name}'s"
    if message.startswith("Signature mismatch"):
        return _changes(folder, signature, covered) or message
    return f"does not verify: {message}"


def _changes(folder: Path, signature: Path, covered: list[str]) -> str | None:
    """Which covered files differ from the digests in the (already authenticated) signature."""
    signed = _signed(signature)
    if signed is None:
        return None
    changed = [n for n in covered if n in signed and (folder / n).is_file() and sha256_file(folder / n) != signed[n]]
    parts = [
        f"changed since signing: {', '.join(changed)}" if changed else "",
        f"missing: {', '.join(n for n in covered if not (folder / n).is_file())}"
        if any(not (folder / n).is_file() for n in covered)
        else "",
        f"not covered by the signature: {', '.join(n for n in covered if n not in signed)}"
        if any(n not in signed for n in covered)
        else "",
        f"signed but no longer in the export: {', '.join(n for n in signed if n not in covered)}"
        if any(n not in covered for n in signed)
        else "",
    ]
    return "; ".join(p for p in parts if p) or None


def _signed(signature: Path) -> dict[str, str] | None:
    """The signed files and their SHA-256, from the bundle's in-toto statement (None if unreadable)."""
    try:
        statement = json.loads(base64.b64decode(_bundle(signature)["dsseEnvelope"]["payload"]))
        return {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _bundle(signature: Path) -> dict:
    return json.loads(signature.read_text(encoding="utf-8"))


def _material(signature: Path) -> str | None:
    """How a signature names its signer: "publicKey" or "x509CertificateChain" (None if unreadable)."""
    try:
        material = _bundle(signature)["verificationMaterial"]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return next((k for k in ("publicKey", "x509CertificateChain") if k in material), None)


def _key_id(public_key: Path) -> str:
    """The public key's SHA-256 over its PEM, as model-signing records it (first 16 hex digits)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_key.read_bytes())
    return _fingerprint(key)


def _fingerprint(key) -> str:
    from cryptography.hazmat.primitives import serialization

    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"sha256 {hashlib.sha256(pem).hexdigest()[:16]}…"


def _signer(private_key: Path, certificate: Path | None) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_key.read_bytes(), None)
    if certificate is None:
        return f"key {_fingerprint(key.public_key())}"
    subject = x509.load_pem_x509_certificate(certificate.read_bytes()).subject.rfc4514_string()
    return f"certificate {subject} (key {_fingerprint(key.public_key())})"


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
