"""The .kolmb file (kolm.bundlefile): any tar reads it, and `kolm unbundle` checks every byte of it
against the signed lock before writing any. A changed byte anywhere, a truncation, bytes appended, a
lock signed by another key or naming a path outside the folder: refused in one line, nothing written.
The end-to-end bundle (real wheels, a real export, installed with no network) is
tests/test_bundle.py."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kolm.bundlefile import (
    LOCK,
    SIGNATURE,
    BundleLock,
    LockedFile,
    check_bundle,
    lock_bytes,
    unpack_bundle,
    write_bundle,
)
from kolm.errors import ArtifactError
from kolm.signing import canonical_signature, sign_files
from kolm_testing import invoke, write_key_pair
from kolm_testing.fuzz import FUZZ, mutated, one_line

TAGS = "manylinux2014_aarch64.manylinux_2_17_aarch64.manylinux_2_28_aarch64"
LONG_WHEEL = f"wheels/charset_normalizer-3.5.3-cp311-cp311-{TAGS}.whl"  # over tar's 100-character name field
FILES = {
    "README.md": b"# a bundle\n",
    "artifact/tiny.kolm": os.urandom(3000),
    "export/kolm-export.json": b'{"schema": "RS-1/export"}\n',
    "export/tiny.Q8_0.gguf": os.urandom(5000),
    "install.sh": b"#!/bin/sh\necho installed\n",
    LONG_WHEEL: os.urandom(700),
}


def make(folder: Path, files: dict[str, bytes], key: Path, locked: list[LockedFile] | None = None) -> BundleLock:
    """A lock over `files` (written under folder/files; `locked` instead, if given), signed with
    `key`, and the bundle folder/site.kolmb."""
    for name, data in files.items():
        (folder / "files" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "files" / name).write_bytes(data)
    if locked is None:
        locked = [
            LockedFile(path=n, size=len(d), sha256=hashlib.sha256(d).hexdigest()) for n, d in sorted(files.items())
        ]
    lock = BundleLock(
        platform="linux-x86_64",
        python="3.11",
        backend="gguf",
        install=["kolm-core[signing]", "kolm-gguf"],
        plugins=["kolm-gguf"],
        artifact="artifact/tiny.kolm",
        made_with="kolm-core test",
        files=locked,
    )
    (folder / "lock").mkdir(exist_ok=True)
    (folder / "lock" / LOCK).write_bytes(lock_bytes(lock))
    sign_files(folder / "lock", [LOCK], folder / SIGNATURE, key)
    write_bundle(folder / "site.kolmb", lock, canonical_signature((folder / SIGNATURE).read_bytes()), folder / "files")
    return lock


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: write_key_pair(folder, name) for name in ("signer", "other")}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, keys) -> Path:
    folder = tmp_path_factory.mktemp("bundle")
    make(folder, FILES, keys["signer"][0])
    return folder / "site.kolmb"


def test_any_tar_reads_it_and_unbundle_unpacks_every_file_whole(bundle, keys, tmp_path):
    with tarfile.open(bundle) as tar:
        assert tar.getnames() == [LOCK, SIGNATURE, *sorted(FILES)]
        assert {m.mtime for m in tar.getmembers()} == {0}
        assert tar.extractfile(LONG_WHEEL).read() == FILES[LONG_WHEEL]
    checked = check_bundle(bundle, keys["signer"][1])
    unpack_bundle(checked, tmp_path / "site")
    for name, data in FILES.items():
        assert (tmp_path / "site" / name).read_bytes() == data
    assert (tmp_path / "site" / "install.sh").stat().st_mode & 0o111
    assert (tmp_path / "site" / LOCK).read_bytes() == checked.lock_raw  # a site can check it again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no staging left beside it


def test_the_same_lock_signature_and_files_make_the_same_bytes(bundle, tmp_path):
    checked_lock = BundleLock.model_validate_json(tarfile.open(bundle).extractfile(LOCK).read())
    signature = tarfile.open(bundle).extractfile(SIGNATURE).read()
    for name, data in FILES.items():
        (tmp_path / "files" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "files" / name).write_bytes(data)
    write_bundle(tmp_path / "again.kolmb", checked_lock, signature, tmp_path / "files")
    assert (tmp_path / "again.kolmb").read_bytes() == bundle.read_bytes()


@FUZZ
@given(damage=st.data())
def test_a_changed_byte_anywhere_is_refused_before_anything_is_written(bundle, keys, tmp_path, damage):
    seed = bundle.read_bytes()
    offset = damage.draw(st.integers(0, len(seed) - 1), label="offset")
    mask = damage.draw(st.integers(1, 255), label="xor")
    damaged = tmp_path / "damaged.kolmb"
    damaged.write_bytes(seed[:offset] + bytes([seed[offset] ^ mask]) + seed[offset + 1 :])
    with pytest.raises(ArtifactError) as refused:
        check_bundle(damaged, keys["signer"][1])
    one_line(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.kolmb"]


@FUZZ
@given(damage=st.data())
def test_truncated_spliced_or_foreign_bytes_are_refused(bundle, keys, tmp_path, damage):
    data = damage.draw(mutated(bundle.read_bytes()), label="bytes")
    if data == bundle.read_bytes():
        return
    damaged = tmp_path / "damaged.kolmb"
    damaged.write_bytes(data)
    with pytest.raises(ArtifactError) as refused:
        check_bundle(damaged, keys["signer"][1])
    one_line(refused.value)


def test_another_key_a_respaced_signature_and_appended_bytes_are_refused(bundle, keys, tmp_path):
    with pytest.raises(ArtifactError, match="signature does not hold: signed by another key"):
        check_bundle(bundle, keys["other"][1])
    appended = tmp_path / "appended.kolmb"
    appended.write_bytes(bundle.read_bytes() + b"\0" * 512)
    with pytest.raises(ArtifactError, match="truncated or appended to"):
        check_bundle(appended, keys["signer"][1])
    raw = tarfile.open(bundle).extractfile(SIGNATURE).read()
    assert canonical_signature(raw) == raw
    with pytest.raises(ArtifactError, match="not a model-signing signature kolm writes"):
        canonical_signature(raw.replace(b'"keyid":""', b'"keyId":""'))


@pytest.mark.parametrize("path", ["../escape.sh", "export/../../escape", "/etc/passwd", "bin/kolm", "export/"])
def test_a_signed_lock_naming_a_path_outside_the_folder_is_refused(keys, tmp_path, path):
    files = [LockedFile(path=path, size=0, sha256="0" * 64)]
    with pytest.raises(ValueError, match="unsafe or unexpected path"):
        make(tmp_path, {}, keys["signer"][0], files)


def test_a_lock_signed_with_an_escaping_path_is_refused_at_the_site(keys, tmp_path):
    """Signed by the right key, but naming a path out of the folder (a lock made by hand)."""
    make(tmp_path, {"README.md": b"x"}, keys["signer"][0])
    bundle = tmp_path / "site.kolmb"
    raw = tarfile.open(bundle).extractfile(LOCK).read()
    forged = raw.replace(b'"path": "README.md"', b'"path": "../README.md"')
    (tmp_path / "lock" / LOCK).write_bytes(forged)
    sign_files(tmp_path / "lock", [LOCK], tmp_path / "forged.sig", keys["signer"][0])
    signature = canonical_signature((tmp_path / "forged.sig").read_bytes())
    with open(tmp_path / "forged.kolmb", "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in ((LOCK, forged), (SIGNATURE, signature), ("../README.md", b"x")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ArtifactError, match=r"not a valid lock \(files: Value error, unsafe or unexpected path"):
        check_bundle(tmp_path / "forged.kolmb", keys["signer"][1])
    assert not (tmp_path.parent / "README.md").exists()


def test_a_file_changed_after_the_check_is_refused_and_nothing_is_unpacked(bundle, keys, tmp_path):
    copy = tmp_path / "site.kolmb"
    copy.write_bytes(bundle.read_bytes())
    checked = check_bundle(copy, keys["signer"][1])
    data = bytearray(copy.read_bytes())
    data[checked.offsets["export/tiny.Q8_0.gguf"] + 10] ^= 1
    copy.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="export/tiny.Q8_0.gguf changed since it was checked"):
        unpack_bundle(checked, tmp_path / "site")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.kolmb"]


# -- the commands' refusals, each one line with its own exit code ----------------------------------


def test_unbundle_with_another_key_is_exit_5_and_writes_nothing(bundle, keys, tmp_path):
    result = invoke("unbundle", bundle, "--key", keys["other"][1], "-o", tmp_path / "site")
    assert result.exit_code == 5
    assert result.stderr.strip().splitlines() == [
        f"kolm: error: {bundle}: the bundle's signature does not hold: signed by another key, not other.pub.pem's"
    ]
    assert not (tmp_path / "site").exists()


def test_unbundle_into_a_folder_holding_something_else_is_exit_9(bundle, keys, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "mine.txt").write_text("keep me")
    result = invoke("unbundle", bundle, "--key", keys["signer"][1], "-o", tmp_path / "site", "--python", sys.executable)
    assert result.exit_code == 9, result.output
    assert "exists and is not this bundle unpacked; choose another -o or remove it" in result.stderr
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["mine.txt"]


def test_unbundle_without_the_bundles_python_names_it(bundle, keys, tmp_path):
    result = invoke("unbundle", bundle, "--key", keys["signer"][1], "-o", tmp_path / "site", "--python", "false")
    assert result.exit_code == 2
    assert "the bundle's wheels are for Python 3.11: give --python PATH to a Python 3.11" in result.stderr
    assert not (tmp_path / "site").exists()


def test_bundle_refuses_an_unknown_platform_and_an_export_without_its_fp16_reference(exported, packed, keys, tmp_path):
    export = exported("int4")
    unknown = invoke(
        "bundle",
        export,
        "--against",
        packed,
        "--platform",
        "windows-x86",
        "--key",
        keys["signer"][0],
        "-o",
        tmp_path / "b.kolmb",
    )
    assert unknown.exit_code == 2 and "'windows-x86' is not one of" in unknown.output
    shutil.rmtree(os.environ["KOLM_HOME"], ignore_errors=True)  # the cached fp16 reference is gone
    args = ("--platform", "linux-aarch64", "--key", keys["signer"][0], "-o", tmp_path / "b.kolmb")
    missing = invoke("bundle", export, "--against", packed, *args)
    assert missing.exit_code == 2
    assert f"no fp16 table reference of {packed.name} is cached here" in missing.stderr
    assert not list(tmp_path.glob("*b.kolmb*"))
