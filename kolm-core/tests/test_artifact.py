"""RS-1 artifacts: pack, read back, and refuse every kind of bad archive with one clear line."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from kolm.artifact import Artifact
from kolm.errors import ArtifactError, OutputError, UnsupportedModelError, UsageError
from kolm.pack import pack_folder


def rewrite(src: Path, dst: Path, *, drop=(), replace=None, add=None, compress=()) -> Path:
    """Copy an archive member by member, changing what a test needs."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = replace.get(info.filename, zin.read(info.filename))
            method = zipfile.ZIP_DEFLATED if info.filename in compress else zipfile.ZIP_STORED
            zout.writestr(info.filename, data, compress_type=method)
        for name, data in add.items():
            zout.writestr(name, data)
    return dst


def manifest_of(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("manifest.json"))


def test_pack_then_read_back(artifact: Path, hf_folder: Path):
    with Artifact(artifact) as art:
        m = art.manifest
        assert (m.schema_, m.base, m.arch, m.quant) == ("RS-1", "tiny-llama", "LlamaForCausalLM", "fp16")
        assert [p.path for p in m.payload] == ["model/config.json", "model/model.safetensors", "model/tokenizer.json"]
        assert (
            m.params
            == art.inventory().params
            == 64 * 256 + 2 * (2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 128) + 64
        )
        assert [i.id for i in art.eval_items()] == ["capital", "sum"]
        assert "model/README.md" not in art.names()
        expected = hashlib.sha256((hf_folder / "model.safetensors").read_bytes()).hexdigest()
        assert next(p.sha256 for p in m.payload if p.path.endswith("safetensors")) == expected


def test_members_are_stored_uncompressed(artifact: Path):
    with zipfile.ZipFile(artifact) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}


def test_pack_is_deterministic(tmp_path: Path, hf_folder: Path, eval_pack: Path):
    a, b = tmp_path / "a.kolm", tmp_path / "b.kolm"
    pack_folder(hf_folder, eval_pack, "tiny", a, "MIT")
    pack_folder(hf_folder, eval_pack, "tiny", b, "MIT")
    assert a.read_bytes() == b.read_bytes()


def test_extract_model(artifact: Path, tmp_path: Path, hf_folder: Path):
    with Artifact(artifact) as art:
        out = art.extract_model(tmp_path / "x")
    assert (out / "model.safetensors").read_bytes() == (hf_folder / "model.safetensors").read_bytes()


def test_tampered_payload_is_detected(artifact: Path, tmp_path: Path):
    with zipfile.ZipFile(artifact) as z:
        data = bytearray(z.read("model/model.safetensors"))
    data[-1] ^= 0xFF
    bad = rewrite(artifact, tmp_path / "bad.kolm", replace={"model/model.safetensors": bytes(data)})
    with Artifact(bad) as art, pytest.raises(ArtifactError, match="SHA-256 of model/model.safetensors: expected "):
        art.extract_model(tmp_path / "x")


@pytest.mark.parametrize(
    "case, message",
    [
        ("not_zip", "not a .kolm archive"),
        ("truncated", "not a .kolm archive"),
        ("zip_slip", "path escapes the archive"),
        ("absolute", "absolute path"),
        ("bad_json", "manifest.json is not valid JSON"),
        ("wrong_schema", "schema is 'RS-0'"),
        ("invalid_field", "not valid RS-1: params"),
        ("oversize", "the manifest declares"),
        ("undeclared", "is not declared in the manifest payload"),
        ("missing", "but the archive lacks it"),
        ("compressed", "is compressed"),
        ("pickle", "looks like a pickle"),
        ("no_manifest", "no manifest.json"),
    ],
)
def test_bad_archives_are_refused(case: str, message: str, artifact: Path, tmp_path: Path):
    bad = tmp_path / "bad.kolm"
    manifest = manifest_of(artifact)
    if case == "not_zip":
        bad.write_bytes(b"GGUF this is not a zip")
    elif case == "truncated":
        bad.write_bytes(artifact.read_bytes()[: artifact.stat().st_size // 2])
    elif case == "zip_slip":
        rewrite(artifact, bad, add={"../evil.sh": b"rm -rf /"})
    elif case == "absolute":
        rewrite(artifact, bad, add={"/etc/passwd": b"x"})
    elif case == "bad_json":
        rewrite(artifact, bad, replace={"manifest.json": b"{not json"})
    elif case == "wrong_schema":
        rewrite(artifact, bad, replace={"manifest.json": json.dumps({**manifest, "schema": "RS-0"}).encode()})
    elif case == "invalid_field":
        rewrite(artifact, bad, replace={"manifest.json": json.dumps({**manifest, "params": -1}).encode()})
    elif case == "oversize":
        with zipfile.ZipFile(artifact) as z:
            grown = z.read("model/tokenizer.json") + b" " * 10
        rewrite(artifact, bad, replace={"model/tokenizer.json": grown})
    elif case == "undeclared":
        rewrite(artifact, bad, add={"model/extra.safetensors": b"\0" * 16})
    elif case == "missing":
        rewrite(artifact, bad, drop={"model/model.safetensors"})
    elif case == "compressed":
        rewrite(artifact, bad, compress={"model/config.json"})
    elif case == "pickle":
        rewrite(artifact, bad, add={"model/pytorch_model.bin": b"\x80\x04"})
    elif case == "no_manifest":
        rewrite(artifact, bad, drop={"manifest.json"})
    with pytest.raises(ArtifactError, match=message) as err:
        Artifact(bad)
    assert "\n" not in str(err.value)


def test_pickle_weights_are_refused(tmp_path: Path, hf_folder: Path, eval_pack: Path):
    (hf_folder / "model.safetensors").unlink()
    (hf_folder / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(UnsupportedModelError, match="pickle weights .*safetensors only"):
        pack_folder(hf_folder, eval_pack, "tiny", tmp_path / "x.kolm", "MIT")
    assert not (tmp_path / "x.kolm").exists()


def test_bad_eval_pack_leaves_no_output(tmp_path: Path, hf_folder: Path):
    pack = tmp_path / "bad.jsonl"
    pack.write_text('{"id": "a", "prompt": "p", "kind": "choice", "choices": ["x"], "answer": "y"}\n')
    with pytest.raises(UsageError, match="line 1: not a valid eval item"):
        pack_folder(hf_folder, pack, "tiny", tmp_path / "x.kolm", "MIT")
    assert list(tmp_path.glob("x.kolm*")) == [] and list(tmp_path.glob(".x.kolm*")) == []


def test_missing_output_folder(tmp_path: Path, hf_folder: Path, eval_pack: Path):
    with pytest.raises(OutputError, match="does not exist"):
        pack_folder(hf_folder, eval_pack, "tiny", tmp_path / "nope" / "x.kolm", "MIT")


def test_failure_mid_write_leaves_nothing(tmp_path: Path, hf_folder: Path, eval_pack: Path, monkeypatch):
    import kolm.artifact

    def explode(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kolm.artifact.shutil, "copyfileobj", explode)
    with pytest.raises(OutputError, match="no space left on device"):
        pack_folder(hf_folder, eval_pack, "tiny", tmp_path / "x.kolm", "MIT")
    assert [p.name for p in tmp_path.iterdir() if "kolm" in p.name] == []


def test_copy_hashing_copies_and_hashes_every_chunk(tmp_path):
    import hashlib
    import io

    from kolm.artifact import CHUNK, copy_hashing

    data = bytes(range(256)) * (CHUNK // 256) * 3 + b"tail"
    digest, seen = hashlib.sha256(), []
    copy_hashing(io.BytesIO(data), tmp_path / "out", digest, seen.append)
    assert (tmp_path / "out").read_bytes() == data and digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert sum(seen) == len(data) and len(seen) == 4


def test_copy_hashing_raises_the_writers_error_and_stops_reading(tmp_path):
    import hashlib

    from kolm.artifact import copy_hashing

    class Endless:
        reads = 0

        def read(self, n):
            self.reads += 1
            return b"x" * n

    source = Endless()
    with pytest.raises(IsADirectoryError):
        copy_hashing(source, tmp_path, hashlib.sha256(), lambda n: None)  # a folder cannot be opened for writing
    assert source.reads < 100
