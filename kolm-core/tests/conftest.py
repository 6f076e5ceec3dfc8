"""Fixtures for kolm-core: tiny Hugging Face folders written by hand (no torch), eval packs, and a
registry holding only test plugins, so core tests never depend on backend plugins:

- `BoardPlugin`: device rows only (its boards name a backend `testbe` that is not installed);
- `TableBackend`: a complete backend whose "model" is a lookup table, so the export, verify and
  signing pipelines run end to end in this env. It stands in for a toolchain at the plugin
  boundary only; the real backends are tested through the same pipelines in their own envs."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from kolm import hookimpl
from kolm.api import (
    Backend,
    ExportRequest,
    ExportResult,
    PayloadFacts,
    RunRequest,
    Session,
    SizeForecast,
    TierRecipe,
)
from kolm.devices import DeviceProfile
from kolm.inventory import config_inventory
from kolm_testing import device_row

TINY_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
    "tie_word_embeddings": True,
    "max_position_embeddings": 128,
    "torch_dtype": "float16",
}
EVAL_ITEMS = [
    {"id": "capital", "prompt": "The capital of France is", "kind": "contains", "answer": "Paris"},
    {"id": "sum", "prompt": "2 + 2 =", "kind": "choice", "choices": [" 3", " 4"], "answer": " 4"},
]


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
    inventory = config_inventory(TINY_CONFIG, "F16")
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
        return [
            device_row(
                name="Test Board 4",
                aliases=["tb4"],
                kind="sbc",
                arch="arm64",
                memory_gb=4,
                bandwidth_gbps=10,
                backends=["testbe"],
            ),
            device_row(
                name="Test GPU",
                kind="desktop-gpu",
                memory_gb=2,
                memory_kind="vram",
                bandwidth_gbps=500,
                backends=["testbe"],
            ),
        ]


class TableSession(Session):
    """Answers EVAL_ITEMS from a table: "Paris" for the capital, " 4" over " 3" for the sum, except
    at int4 (`I4`), which prefers " 3": the int4 export loses 50 K points."""

    def __init__(self, model: dict) -> None:
        self.flipped = model["spelling"] == "I4"

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False):
        yield " Paris." if "capital" in prompt else " I do not know."

    def loglikelihood(self, context: str, continuation: str) -> float:
        return -1.0 if (continuation == " 4") != self.flipped else -2.0

    def position_logprobs(self, text: str):
        import numpy as np
        from kolm.logprobs import log_softmax

        logits = np.array([[(len(text) + i) % 3, 1.0, 0.5 + 0.6 * self.flipped] for i in range(len(text))])
        return log_softmax(logits)


class TableBackend:
    """Backend `table` (tiers fp16/int8/int4 spelled F16/I8/I4, and a second int4 recipe `fine`
    spelled I4F that keeps K) and the Test Table Box it runs on.
    The payload is `model.json` (the spelling and, once embedded, the manifest) beside a copy of the
    weights, so every byte of it is hashed and checked as a real payload is."""

    TIERS = {"fp16": "F16", "int8": "I8", "int4": "I4"}
    ALTERNATIVES = {
        "int4": [
            {
                "name": "fine",
                "spelling": "I4F",
                "measured_drop": {"points": {"SmolLM2-135M-Instruct": 1.5, "other": 3.5}, "source": "a test"},
            }
        ]
    }

    def __init__(self) -> None:
        self.refusal: str | None = None  # what `cannot_export` answers (a test sets it)
        self.refused_recipe: str | None = None  # only this recipe is refused, when a test names one

    @hookimpl
    def backend(self) -> Backend:
        return Backend(
            name="table",
            description="a lookup-table model for kolm-core's tests",
            tiers=self.TIERS,
            alternatives=self.ALTERNATIVES,
            install="(kolm-core's tests)",
        )

    @hookimpl
    def device_profiles(self) -> list[DeviceProfile]:
        return [device_row(name="Test Table Box", aliases=["ttb"])]

    @hookimpl
    def forecast_size(self, spec, recipe: TierRecipe) -> SizeForecast:
        size = spec.inventory.nbytes
        return SizeForecast(bytes=size, read_per_token_bytes=size, method=f"the weights as stored ({recipe.spelling})")

    @hookimpl
    def cannot_export(self, spec, recipe: TierRecipe) -> str | None:
        if self.refused_recipe not in (None, recipe.name):
            return None
        return self.refusal and self.refusal.format(arch=spec.arch)

    @hookimpl
    def export(self, request: ExportRequest) -> ExportResult:
        import shutil

        (request.out_dir / "model.json").write_text(json.dumps({"spelling": request.spelling, "manifest": None}))
        shutil.copyfile(request.model_dir / "model.safetensors", request.out_dir / "model.safetensors")
        return ExportResult(
            payload=["model.json", "model.safetensors"], toolchain={"table": "1"}, flags={"spelling": request.spelling}
        )

    @hookimpl
    def embed_manifest(self, out_dir: Path, payload: list[str], manifest_json: str) -> bool:
        model = json.loads((out_dir / payload[0]).read_text())
        (out_dir / payload[0]).write_text(json.dumps({**model, "manifest": manifest_json}))
        return True

    @hookimpl
    def run(self, request: RunRequest) -> Session:
        return TableSession(json.loads((request.path / request.payload[0]).read_text()))

    @hookimpl
    def read_payload(self, request: RunRequest) -> PayloadFacts:
        model = json.loads((request.path / request.payload[0]).read_text())
        shown = {r.spelling: (tier, r.name) for tier, r in self.backend().recipes()}.get(model["spelling"])
        tier, recipe = shown or (None, None)
        return PayloadFacts(manifest_json=model["manifest"], tier=tier, recipe=recipe, types=model["spelling"])


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
    """A registry with no entry-point plugins, only `BoardPlugin`."""
    from kolm import plugins

    reg = plugins.registry()
    assert reg.add(BoardPlugin(), "board", "kolm-test-boards", "0.1")
    yield reg
    plugins.registry.cache_clear()


@pytest.fixture
def table_backend() -> TableBackend:
    return TableBackend()


@pytest.fixture
def table(registry, table_backend):
    """The registry with `TableBackend` added."""
    assert registry.add(table_backend, "table", "kolm-test-table", "0.1")
    return registry


@pytest.fixture
def packed(table, tmp_path: Path, hf_folder: Path, eval_pack: Path) -> Path:
    """`kolm pack` of the tiny folder: its fp16 K (1.0) measured through the table backend."""
    from kolm.pack import pack_folder

    out = tmp_path / "tiny.kolm"
    pack_folder(hf_folder, eval_pack, "tiny-llama", out, "Apache-2.0", registry=table)
    return out


@pytest.fixture
def exported(table, packed: Path, tmp_path: Path):
    """exported(tier): `kolm export tiny.kolm --target ttb --quant TIER --allow-drop -o DIR`, the folder."""
    from kolm_testing import invoke

    def export(tier: str) -> Path:
        out = tmp_path / f"tiny-{tier}"
        result = invoke("export", packed, "--target", "ttb", "--quant", tier, "-o", out, "--allow-drop")
        assert result.exit_code == 0, result.output
        return out

    return export
