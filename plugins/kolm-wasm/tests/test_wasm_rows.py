"""kolm-wasm: the browser row states its limits, and the payload size is the GGUF's, asked of
the gguf backend through the hook."""

from kolm.forecast import forecast
from kolm.modelspec import resolve_model
from kolm.plugins import registry


def test_browser_row_states_the_per_file_limit():
    browser = registry().devices().find("wasm")
    assert browser.name == "browser" and "2GB per model file" in browser.notes


def test_size_is_the_gguf_size():
    reg = registry()
    spec = resolve_model("SmolLM2-135M-Instruct")
    browser = reg.devices().find("browser")
    for tier in ("fp16", "int8", "int4", "int3"):
        wasm = reg.hook.forecast_size(spec=spec, tier=tier, backend="wasm", device=browser)
        assert wasm == reg.hook.forecast_size(spec=spec, tier=tier, backend="gguf", device=browser)
        assert wasm.method.startswith("llama.cpp ")
    assert forecast(reg, spec, browser, "int4").size_bytes == reg.hook.forecast_size(
        spec=spec, tier="int4", backend="gguf", device=browser).bytes
