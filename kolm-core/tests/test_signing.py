"""`kolm sign` and `kolm verify --key`: OpenSSF model-signing with a local EC key (or certificate),
offline. A signed export passes all seven checks; a changed signed file, an unsigned export, or
another key fails check 7; a missing model-signing or key file is one line."""

from __future__ import annotations

import base64
import datetime
import json
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from kolm.cli import cli
from kolm_testing import VERIFY_CHECKS, failed, verify, write_key_pair

NAMES = [*VERIFY_CHECKS, "signature"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test: signing must work air-gapped."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: write_key_pair(folder, name) for name in ("signer", "other")}


@pytest.fixture
def int4_copy(exported) -> Path:
    """A fresh int4 export (kolm-core's table backend), safe to sign and tamper with."""
    return exported("int4")


def kolm(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def sign(export: Path, private: Path):
    result = kolm("sign", export, "--key", private)
    assert result.exit_code == 0, result.output
    return result


def signed_names(export: Path) -> list[str]:
    bundle = json.loads((export / "kolm.sig").read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return sorted(r["name"] for r in statement["predicate"]["resources"])


def test_sign_then_verify_with_the_key_passes_all_seven(packed, int4_copy, keys):
    private, public = keys["signer"]
    weights = int4_copy / "model.safetensors"
    result = sign(int4_copy, private)
    assert result.stdout.startswith(f"wrote {int4_copy / 'kolm.sig'}: key sha256 ")
    assert signed_names(int4_copy) == ["kolm-export.json", "model.json", weights.name]  # exactly what the help says
    assert not [p for p in int4_copy.iterdir() if p.name.endswith(".part")]
    code, evidence = verify(int4_copy, packed, "--key", public)
    assert code == 0 and evidence["passed"] and failed(evidence) == []
    assert [c["name"] for c in evidence["checks"]] == NAMES and [c["number"] for c in evidence["checks"]] == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    ]
    assert evidence["checks"][6]["found"] == "valid; 3 files unchanged since signing" and evidence["notes"] == []


def test_a_changed_payload_byte_fails_checks_2_and_7(packed, int4_copy, keys):
    private, public = keys["signer"]
    sign(int4_copy, private)
    weights = int4_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0x01
    weights.write_bytes(bytes(data))
    code, evidence = verify(int4_copy, packed, "--key", public)
    assert code == 11 and not evidence["passed"] and {2, 7} <= set(failed(evidence))
    assert evidence["checks"][6]["found"] == f"changed since signing: {weights.name}"


def test_an_unsigned_export_with_a_key_fails_clearly(packed, int4_copy, keys):
    code, evidence = verify(int4_copy, packed, "--key", keys["signer"][1])
    assert code == 11 and failed(evidence) == [7]
    found = evidence["checks"][6]["found"]
    assert found.startswith("no signature (kolm.sig missing)") and "run kolm sign" in found


def test_another_public_key_fails(packed, int4_copy, keys):
    sign(int4_copy, keys["signer"][0])
    code, evidence = verify(int4_copy, packed, "--key", keys["other"][1])
    assert code == 11 and failed(evidence) == [7]
    assert evidence["checks"][6]["found"] == "signed by another key, not other.pub.pem's"


def test_without_a_key_a_signature_is_mentioned_not_checked(packed, int4_copy, keys):
    sign(int4_copy, keys["signer"][0])
    result = kolm("verify", int4_copy, "--against", packed, "--min-k", "0", "--max-k-drop", "100")
    assert result.exit_code == 0 and "6 of 6 checks passed" in result.stdout
    assert "note: kolm.sig present but not checked: give --key PUBLIC_KEY.pem" in result.stdout


def test_what_the_signature_covers(int4_copy, keys):
    """Every file of the folder but binder.json (kolm verify writes it): a file added, removed or
    changed since signing fails check 7, naming it; signing again takes the folder as it is."""
    from kolm.signing import check_signature

    private, public = keys["signer"]
    sign(int4_copy, private)
    (int4_copy / "binder.json").write_text("{}")
    assert check_signature(int4_copy, public).passed
    extra = int4_copy / "model-00002-of-00002.safetensors"  # a runtime globbing model*.safetensors loads it
    extra.write_bytes(b"unsigned weights")
    check = check_signature(int4_copy, public)
    assert not check.passed and check.found == f"not covered by the signature: {extra.name}"
    sign(int4_copy, private)  # signing again replaces kolm.sig, covering the folder as it is now
    assert check_signature(int4_copy, public).passed
    extra.unlink()
    check = check_signature(int4_copy, public)
    assert not check.passed and check.found == f"signed but no longer in the export: {extra.name}"


def test_a_reordered_payload_fails_as_a_changed_record(int4_copy, keys):
    from kolm.signing import check_signature

    private, public = keys["signer"]
    sign(int4_copy, private)
    record = int4_copy / "kolm-export.json"
    data = json.loads(record.read_text())
    data["payload"].reverse()
    record.write_text(json.dumps(data, indent=2))
    check = check_signature(int4_copy, public)
    assert not check.passed and check.found == "changed since signing: kolm-export.json"


def test_a_signature_over_other_files_fails_even_with_the_right_key(int4_copy, keys):
    """Made with model-signing directly, over the record only: valid, but not what kolm sign covers."""
    import model_signing.hashing
    import model_signing.signing
    from kolm.signing import check_signature

    private, public = keys["signer"]
    weights = int4_copy / "model.safetensors"
    hashing = model_signing.hashing.Config().set_ignored_paths(paths=["model.json", weights.name, "binder.json"])
    model_signing.signing.Config().set_hashing_config(hashing).use_elliptic_key_signer(private_key=private).sign(
        int4_copy, int4_copy / "kolm.sig"
    )
    check = check_signature(int4_copy, public)
    assert not check.passed and check.found.startswith("valid, but it covers kolm-export.json, not")


def test_certificate_mode(int4_copy, tmp_path):
    """Sign as a certificate issued by a local CA; verify against that CA, offline."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from kolm.signing import check_signature

    def certificate(subject: str, key, issuer: str, issuer_key, ca: bool) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=not ca,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=ca,
                    crl_sign=ca,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        return builder.sign(issuer_key, hashes.SHA256())

    pem = serialization.Encoding.PEM
    ca_key, other_ca_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    for name, cert in [
        ("ca.pem", certificate("kolm test CA", ca_key, "kolm test CA", ca_key, True)),
        ("other-ca.pem", certificate("other CA", other_ca_key, "other CA", other_ca_key, True)),
        ("leaf.pem", certificate("release signer", leaf_key, "kolm test CA", ca_key, False)),
    ]:
        (tmp_path / name).write_bytes(cert.public_bytes(pem))
    (tmp_path / "leaf.key").write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    result = kolm("sign", int4_copy, "--key", tmp_path / "leaf.key", "--cert", tmp_path / "leaf.pem")
    assert result.exit_code == 2 and "--cert needs --chain" in result.stderr
    result = kolm(
        "sign",
        int4_copy,
        "--key",
        tmp_path / "leaf.key",
        "--cert",
        tmp_path / "leaf.pem",
        "--chain",
        tmp_path / "ca.pem",
    )
    assert result.exit_code == 0 and "certificate CN=release signer" in result.stdout, result.output
    assert check_signature(int4_copy, tmp_path / "ca.pem").passed
    check = check_signature(int4_copy, tmp_path / "other-ca.pem")
    assert not check.passed and check.found.startswith("does not verify: "), check.found


def test_missing_model_signing_is_one_line(int4_copy, keys, monkeypatch):
    for name in ("model_signing", "model_signing.hashing", "model_signing.signing", "model_signing.verifying"):
        monkeypatch.setitem(sys.modules, name, None)
    for args in (
        ["sign", int4_copy, "--key", keys["signer"][0]],
        ["verify", int4_copy, "--against", "unused.kolm", "--key", keys["signer"][1]],
    ):
        result = kolm(*args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 8 and len(lines) == 1 and "Traceback" not in result.stderr
        assert lines[0].startswith("kolm: error: ") and "pip install 'kolm-core[signing]'" in lines[0]
    assert not (int4_copy / "kolm.sig").exists()


@pytest.mark.parametrize("content", [None, "not a key", "ed25519"])
def test_sign_with_a_bad_key_file_is_one_line(int4_copy, tmp_path, content):
    """A missing key file, a file that is no key, and a key that is not elliptic-curve."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = tmp_path / "signer.pem"
    if content == "ed25519":
        key.write_bytes(
            ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    elif content is not None:
        key.write_text(content)
    result = kolm("sign", int4_copy, "--key", key)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.stderr
    assert (
        lines[0] == f"kolm: error: {key}: no such file"
        if content is None
        else lines[0].startswith(f"kolm: error: cannot sign with {key}: ")
    )
    assert not (int4_copy / "kolm.sig").exists()
