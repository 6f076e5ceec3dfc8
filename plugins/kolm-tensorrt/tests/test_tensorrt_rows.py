"""Forecasts and refusals, answered without the toolchain (nothing is imported or converted)."""

from __future__ import annotations

import json

import pytest
from kolm_testing import invoke


def preview(model: str, target: str, tier: str, *options: str) -> dict:
    result = invoke(
        "export", model, "--target", target, "--backend", "tensorrt", "--quant", tier, "--preview", "--json", *options
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


def devices() -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(invoke("devices", "--json").stdout)}


def test_it_runs_on_the_rtx_rows_it_declares_and_not_on_jetson():
    rows = devices()
    assert all(rows[name]["backends"] == ["gguf", "tensorrt"] for name in ("RTX 3060", "RTX 4090", "RTX 5090"))
    assert "tensorrt" not in rows["Jetson AGX Orin"]["backends"]
    refused = invoke("export", "Llama-3.1-8B", "--target", "jetson-agx-orin", "--backend", "tensorrt", "--quant",
                     "int4", "--preview")  # fmt: skip
    assert refused.exit_code == 2 and "is not a tensorrt target" in refused.stderr


def test_a_users_jetson_row_naming_it_is_refused_with_the_reason(tmp_path, monkeypatch):
    row = {**devices()["Jetson AGX Orin"], "name": "My Orin", "aliases": [], "backends": ["tensorrt"]}
    monkeypatch.setenv("KOLM_HOME", str(tmp_path))
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "my-orin.json").write_text(json.dumps(row))
    f = preview("Llama-3.1-8B", "my-orin", "int4")
    assert f["command"] is None and "TensorRT Edge-LLM" in f["refusal"]


def test_int4_takes_groups_of_64_where_a_projection_is_not_whole_groups_of_128():
    f = preview("SmolLM2-135M", "rtx-4090", "int4")
    assert f["recipe"] == "w4a16-awq-g64" and f["refusal"] is None
    assert f["command"] == "kolm export SmolLM2-135M-Instruct.kolm --target rtx-4090 --quant int4 --backend tensorrt"
    asked = preview("SmolLM2-135M", "rtx-4090", "int4", "--recipe", "w4a16-awq-g128")
    assert asked["command"] is None and "576 wide" in asked["refusal"]
    assert preview("Llama-3.1-8B", "rtx-4090", "int4")["recipe"] == "w4a16-awq-g128"


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
