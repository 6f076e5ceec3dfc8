"""Cross-package tests run in the tox `integration` env, with every plugin of this repo installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

KOLM = Path(sys.executable).with_name("kolm")


def run_kolm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the installed `kolm` console script as a real subprocess."""
    return subprocess.run([str(KOLM), *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def kolm():
    """Run the installed `kolm` console script as a real subprocess: kolm("devices", "--json")."""
    return run_kolm


@pytest.fixture
def tiny_artifact(tmp_path: Path) -> Path:
    """A packed random-weight Llama (2 layers, hidden 64) built with numpy and safetensors."""
    import json

    import numpy as np
    from kolm.inventory import config_inventory
    from safetensors.numpy import save_file

    config = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 256,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
    }
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(0)
    save_file(
        {t.name: rng.standard_normal(t.shape).astype(np.float16) for t in config_inventory(config, "F16").tensors},
        str(folder / "model.safetensors"),
    )
    pack = tmp_path / "pack.jsonl"
    pack.write_text(json.dumps({"id": "a", "prompt": "1 + 1 =", "kind": "contains", "answer": "2"}) + "\n")
    out = tmp_path / "tiny.kolm"
    result = run_kolm("pack", str(folder), "--eval", str(pack), "--base", "tiny", "-o", str(out), "--min-k", "0")
    assert result.returncode == 0, result.stderr
    return out
