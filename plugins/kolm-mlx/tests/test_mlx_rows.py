"""kolm-mlx's rows and forecast: Apple Silicon with its RAM options, calibrated from mlx-lm figures."""

from kolm.forecast import forecast
from kolm.modelspec import resolve_model
from kolm.plugins import registry


def test_m3_rows_list_their_memory_options_and_sources():
    table = registry().devices()
    pro, big = table.find("m3-pro"), table.find("Apple M3 Max")
    assert pro.memory_options_gb == [18, 36] and pro.memory_kind == "unified"
    assert pro.bandwidth_gbps.value == 150 and big.bandwidth_gbps.value == 400
    assert pro.backends[0] == "mlx"
    assert all(r.bandwidth_gbps.source.startswith(("https://", "http://")) for r in table.rows)


def test_forecast_uses_the_mlx_calibration_and_memory_option():
    reg = registry()
    pro = reg.devices().find("m3-pro")
    f = forecast(reg, resolve_model("Llama-3.1-8B"), pro, "fp16")
    assert f.backend == "mlx" and f.tok_s.method == "forecast"
    assert any("mlx" in s for s in f.forecast_sources)
    assert f.fit.verdict == "tight"  # 16 GB of weights + 1 GB runtime on the 18 GB M3 Pro
    assert forecast(reg, resolve_model("Llama-3.1-8B"), pro, "fp16", memory_gb=36).fit.verdict == "pass"
