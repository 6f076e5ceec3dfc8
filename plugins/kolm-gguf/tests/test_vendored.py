"""The vendored llama.cpp converter is what VENDORED.json says (unmodified, from one commit), and what
it registers is what kolm refuses against before converting."""

from __future__ import annotations

import hashlib
import json
import runpy
from pathlib import Path

from kolm_gguf.upstream import VENDORED, architectures, cannot_convert
from kolm_testing import config_spec, invoke

SCRIPT = Path(__file__).parents[1] / "scripts" / "refresh_llama_cpp.py"


def test_every_vendored_file_is_the_recorded_one():
    record = json.loads((VENDORED / "VENDORED.json").read_text())
    on_disk = {
        str(p.relative_to(VENDORED)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in VENDORED.rglob("*")
        if p.is_file() and p.name != "VENDORED.json" and "__pycache__" not in p.parts
    }
    assert on_disk == record["files"]
    assert record["source"] == "llama-cpp-python 0.3.36 sdist (PyPI), vendor/llama.cpp"
    assert len(record["llama.cpp_commit"]) == 40


def test_the_recorded_architectures_are_the_converters_registry():
    refresh = runpy.run_path(str(SCRIPT), run_name="refresh")
    assert architectures() == frozenset(refresh["text_architectures"](VENDORED / "conversion" / "__init__.py"))
    assert {
        "LlamaForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen3ForCausalLM",
        "Gemma3ForCausalLM",
        "Phi3ForCausalLM",
        "MistralForCausalLM",
        "Gemma2ForCausalLM",
    } <= architectures()


def test_an_architecture_the_converter_does_not_register_gets_no_command(tmp_path):
    novel = config_spec({"architectures": ["NovelForCausalLM"]})
    assert cannot_convert(novel).startswith("llama.cpp's converter (") and "NovelForCausalLM" in cannot_convert(novel)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 1,
                "num_attention_heads": 4,
                "vocab_size": 256,
            }
        )
    )
    preview = json.loads(invoke("export", config, "--target", "rpi5", "--quant", "int4", "--preview", "--json").stdout)
    assert preview["refusal"] is None and preview["command"].startswith("kolm export ")
