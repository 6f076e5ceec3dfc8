"""kolm-onnx: int3 is refused in one line; with no published ONNX Runtime figure the forecast
shows the bandwidth ceiling and says it is uncalibrated."""

import pytest
from kolm.errors import BackendError
from kolm.forecast import forecast
from kolm.modelspec import resolve_model
from kolm.plugins import registry


def test_int3_is_refused_naming_the_tiers_onnx_can_do():
    reg = registry()
    with pytest.raises(BackendError, match="^int3 is not supported by onnx; use fp16, int8, int4$"):
        forecast(reg, resolve_model("SmolLM2-135M"), reg.devices().find("pixel-8"), "int3")


def test_uncalibrated_forecast_is_labelled_a_ceiling():
    reg = registry()
    f = forecast(reg, resolve_model("Qwen2.5-0.5B"), reg.devices().find("pixel-8"), "int4")
    assert f.backend == "onnx" and f.tok_s.method == "ceiling" and "uncalibrated" in f.tok_s.basis
