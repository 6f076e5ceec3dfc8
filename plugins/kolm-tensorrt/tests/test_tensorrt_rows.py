"""Forecasts and refusals, answered without the toolchain (nothing is imported or converted)."""

from __future__ import annotations

import json

import pytest
from kolm_testing import invoke


def preview(model: str, target: str, tier: str) -> dict:
    result = invoke(
        "export", model, "--target", target, "--backend", "tensorrt", "--quant", tier, "--preview", "--json"
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("tier", ["fp16", "int8", "int4"])
def test_an_rtx_4090_forecast_cites_its_calibration(tier):
    f = preview("Llama-3.1-8B", "rtx-4090", tier)
    assert f["backend"] == "tensorrt" and f["command"] and f["refusal"] is None
    assert "https://jan.ai/post/benchmarking-nvidia-tensorrt-llm" in f["forecast_sources"]
    assert "ModelOpt checkpoint rule" in f["size_method"]


def test_the_int4_forecast_counts_packed_weights_and_float32_group_scales():
    """Llama-3.1-8B at W4A16 AWQ g128: ~0.53 bytes a projection weight, the embedding and lm_head
    float16 (2 x 128,256 x 4,096 x 2 B = 2.1 GB): between 5.5 and 6 GB."""
    f = preview("Llama-3.1-8B", "rtx-4090", "int4")
    assert 5.5e9 < f["size_bytes"] < 6.0e9 and f["read_per_token_bytes"] < f["size_bytes"]


def test_jetson_is_refused_with_the_reason():
    f = preview("Llama-3.1-8B", "jetson-agx-orin", "int4")
    assert f["command"] is None and "TensorRT Edge-LLM" in f["refusal"]


def test_int4_is_refused_where_a_projection_is_not_whole_groups_of_128():
    f = preview("SmolLM2-135M", "rtx-4090", "int4")
    assert f["command"] is None and "576 wide" in f["refusal"]
    assert preview("SmolLM2-135M", "rtx-4090", "int8")["command"]


def test_int3_is_not_made():
    result = invoke("export", "Llama-3.2-1B", "--target", "rtx-4090", "--backend", "tensorrt", "--quant", "int3",
                    "--preview")  # fmt: skip
    assert result.exit_code != 0 and "int3 is not supported by tensorrt" in result.stderr


def test_the_run_step_is_serve_sh_on_the_gpu_machine():
    """kolm runs no tensorrt export: the preview's run step is the export's own serve.sh over ssh."""
    _, copy, run, verify = preview("Llama-3.2-1B", "rtx-4090", "int4")["steps"]
    assert copy["command"] == "scp -r Llama-3.2-1B-rtx-4090-int4 USER@HOST:"
    assert run["command"] == "sh Llama-3.2-1B-rtx-4090-int4/serve.sh" and "pypi.nvidia.com" in run["note"]
    assert "5 and 6 fail as not run" in verify["note"]
