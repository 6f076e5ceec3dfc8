"""Fixtures for kolm-core: tiny Hugging Face folders written by hand (no numpy, no torch), eval
packs, and a registry holding only a test plugin so core tests never depend on backend plugins."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from kolm import hookimpl
from kolm.devices import DeviceProfile, Sourced
from kolm.inventory import llama_inventory

TINY_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
    "tie_word_embeddings": True, "max_position_embeddings": 128, "torch_dtype": "float16",
}
EVAL_ITEMS = [
    {"id": "capital", "prompt": "The capital of France is", "kind": "contains", "answer": "Paris"},
    {"id": "sum", "prompt": "2 + 2 =", "kind": "choice", "choices": [" 3", " 4"], "answer": " 4"},
]
SOURCE = "https://example.org/spec"


def write_safetensors(path: Path, tensors: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """Write a valid safetensors file of zero-filled tensors (format: u64 header length, JSON, data)."""
    sizes = {"F16": 2, "BF16": 2, "F32": 4}
    header, offset = {}, 0
    for name, (shape, dtype) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.write(b"\0" * offset)


@pytest.fixture
def hf_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
    (folder / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {}, "merges": []}}))
    (folder / "README.md").write_text("not part of the model")
    inventory = llama_inventory(TINY_CONFIG, "F16")
    write_safetensors(folder / "model.safetensors", {t.name: (t.shape, t.dtype) for t in inventory.tensors})
    return folder


@pytest.fixture
def eval_pack(tmp_path: Path) -> Path:
    path = tmp_path / "pack.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in EVAL_ITEMS) + "\n")
    return path


@pytest.fixture
def artifact(tmp_path: Path, hf_folder: Path, eval_pack: Path) -> Path:
    from kolm.pack import pack_folder

    out = tmp_path / "tiny.kolm"
    pack_folder(hf_folder, eval_pack, "tiny-llama", out, "Apache-2.0")
    return out


class BoardPlugin:
    """A test plugin: one SBC row and one GPU row, both served by a backend named `testbe`."""

    @hookimpl
    def device_profiles(self) -> list[DeviceProfile]:
        def sourced(value: float) -> Sourced:
            return Sourced(value=value, source=SOURCE)

        return [
            DeviceProfile(name="Test Board 4", aliases=["tb4"], kind="sbc", os="linux", arch="arm64",
                          memory_gb=sourced(4), memory_kind="ram", bandwidth_gbps=sourced(10), backends=["testbe"]),
            DeviceProfile(name="Test GPU", kind="desktop-gpu", os="linux", arch="x86_64",
                          memory_gb=sourced(2), memory_kind="vram", bandwidth_gbps=sourced(500), backends=["testbe"]),
        ]


@pytest.fixture(autouse=True)
def hermetic(monkeypatch, tmp_path_factory):
    """Core tests see no installed backend plugin and a private bench log."""
    from kolm import plugins

    monkeypatch.setenv("KOLM_LOAD_PLUGINS", "")
    monkeypatch.setenv("KOLM_HOME", str(tmp_path_factory.mktemp("kolm-home")))
    plugins.registry.cache_clear()
    yield
    plugins.registry.cache_clear()


@pytest.fixture
def registry():
    """A registry with no entry-point plugins, only `BoardPlugin` and the core fallbacks."""
    from kolm import plugins

    reg = plugins.registry()
    reg.pm.register(BoardPlugin(), name="board")
    yield reg
    plugins.registry.cache_clear()
