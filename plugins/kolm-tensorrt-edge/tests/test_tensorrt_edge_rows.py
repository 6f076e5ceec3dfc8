"""Forecasts and refusals, answered without the toolchain (nothing is imported or converted)."""

from __future__ import annotations

import json

import pytest
from kolm_testing import invoke

JETSONS = ("Jetson AGX Orin", "Jetson Orin NX", "Jetson Orin Nano")


def preview(model: str, target: str, tier: str) -> dict:
    result = invoke(
        "export", model, "--target", target, "--backend", "tensorrt-edge", "--quant", tier, "--preview", "--json"
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_it_joins_the_jetson_rows_after_their_own_backends():
    rows = {row["name"]: row["backends"] for row in json.loads(invoke("devices", "--json").stdout)}
    assert all(rows[name] == ["gguf", "tensorrt-edge"] for name in JETSONS)
    assert [name for name, backends in rows.items() if "tensorrt-edge" in backends] == sorted(JETSONS)


@pytest.mark.parametrize("tier", ["fp16", "int8", "int4"])
def test_a_jetson_forecast_cites_nvidias_edge_llm_figures(tier):
    f = preview("Qwen3-1.7B", "jetson-orin-nano", tier)
    assert f["backend"] == "tensorrt-edge" and f["command"] and f["refusal"] is None
    assert any("TensorRT-Edge-LLM" in source for source in f["forecast_sources"])
    assert "TensorRT Edge-LLM ONNX rule" in f["size_method"]


def test_the_int4_forecast_counts_fragments_scales_and_a_second_float16_lm_head():
    """Qwen3-1.7B (tied) at int4: the layers ~0.56 bytes a weight, lm_head and embedding float16 each
    (151,936 x 2,048 x 2 B = 0.62 GB): between 1.9 and 2.1 GB on disk, 1.2-1.5 GB read per token."""
    f = preview("Qwen3-1.7B", "jetson-agx-orin", "int4")
    assert 1.9e9 < f["size_bytes"] < 2.1e9 and 1.2e9 < f["read_per_token_bytes"] < 1.5e9


def test_a_model_edge_llm_does_not_list_is_refused_with_the_reason():
    f = preview("Gemma-3-1B", "jetson-agx-orin", "int8")
    assert f["command"] is None and "does not list Gemma3ForCausalLM" in f["refusal"]


def test_int3_is_not_made():
    result = invoke("export", "Qwen3-0.6B", "--target", "jetson-orin-nx", "--backend", "tensorrt-edge", "--quant",
                    "int3", "--preview")  # fmt: skip
    assert result.exit_code != 0 and "int3 is not supported by tensorrt-edge" in result.stderr


def test_the_run_step_builds_the_engine_on_the_jetson_then_runs_it():
    _, copy, run, verify = preview("Qwen3-0.6B", "jetson-agx-orin", "int4")["steps"]
    assert copy["command"] == "scp -r Qwen3-0.6B-jetson-agx-orin-int4 USER@HOST:"
    assert run["command"] == (
        "sh Qwen3-0.6B-jetson-agx-orin-int4/build.sh && sh Qwen3-0.6B-jetson-agx-orin-int4/run.sh"
    )
    assert "JetPack 7.2" in run["note"] and "5 and 6 fail as not run" in verify["note"]
