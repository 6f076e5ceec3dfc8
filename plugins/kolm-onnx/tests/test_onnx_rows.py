"""kolm-onnx's forecasts: int3 is refused in one line, device rows carry their sources, the phone
forecast is calibrated and counts the ORT-format file, and what the installed builder does not
build is refused before converting."""

import pytest
from kolm.errors import BackendError
from kolm.forecast import forecast
from kolm.modelspec import resolve_model
from kolm.plugins import registry


def test_int3_is_refused_naming_the_tiers_onnx_can_do():
    reg = registry()
    with pytest.raises(BackendError, match="^int3 is not supported by onnx; use fp16, int8, int4$"):
        forecast(reg, resolve_model("SmolLM2-135M"), reg.devices().find("pixel-8"), "int3")


def test_phone_forecast_is_calibrated_and_sourced():
    reg = registry()
    f = forecast(reg, resolve_model("Qwen2.5-0.5B"), reg.devices().find("pixel-8"), "int4")
    assert f.backend == "onnx" and f.tok_s.method == "forecast" and "0.53–0.62" in f.tok_s.basis
    assert "https://github.com/ggml-org/llama.cpp/issues/26484" in f.forecast_sources


def test_phone_rows_carry_a_source_for_every_constant():
    devices = registry().devices()
    for name in ("Pixel 8", "Pixel 9", "Galaxy S24"):
        row = devices.find(name)
        assert row.kind == "phone" and row.backends[0] == "onnx"
        assert row.memory_gb.source.startswith("https://") and row.bandwidth_gbps.source.startswith("https://")
    assert "ESTIMATE" in devices.find("pixel-9").bandwidth_gbps.note
    assert "Exynos 2400" in devices.find("galaxy-s24").notes


def test_snapdragon_x_elite_offers_onnx():
    assert "onnx" in registry().devices().find("x-elite").backends


def test_a_phone_gets_the_files_a_laptop_gets():
    """One copy of the weights (`model.onnx.data`), not also an ORT-format copy (issue 15)."""
    reg = registry()
    spec = resolve_model("SmolLM2-135M")
    phone = forecast(reg, spec, reg.devices().find("pixel-8"), "int4")
    laptop = forecast(reg, spec, reg.devices().find("x-elite"), "int4", backend="onnx")
    assert phone.size_bytes == laptop.size_bytes and phone.backend == "onnx"


def test_what_the_builder_does_not_build_is_refused_before_converting():
    """Read from the installed onnxruntime-genai builder's own architecture checks, not a copied list."""
    from kolm_onnx.support import builder_architectures, cannot_build
    from kolm_testing import config_spec

    assert {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Gemma3ForCausalLM"} <= builder_architectures()
    assert cannot_build(config_spec({"architectures": ["Qwen3ForCausalLM"]})) is None
    assert (
        cannot_build(config_spec({"architectures": ["NovelForCausalLM"]}))
        == "onnxruntime-genai's model builder does not build NovelForCausalLM"
    )


def test_a_matmul_named_outside_the_builders_scheme_gets_the_tiers_bits():
    """Found by the long fuzz run: a node name with no `/` or `.` (one flipped byte) raised IndexError."""
    from kolm_onnx.quant_plan import matmul_bits

    int4 = {"bits": 4, "block_size": 32, "matmul_mixed_precision": "last_matmul:int8,mixed_layers:int8"}
    assert [matmul_bits(name, 2, int4) for name in ("", "MatMul", "/model/layers.0/attn/v_proj/MatMul")] == [4, 4, 8]
