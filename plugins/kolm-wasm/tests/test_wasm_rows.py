"""kolm-wasm: the browser row states its limits; the backend builds on gguf, so its tiers and
payload size are the GGUF's, asked of the gguf backend through `base`."""

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
    wasm, gguf = reg.backend("wasm"), reg.backend("gguf")
    assert wasm.base is gguf and wasm.tiers == gguf.tiers
    for tier in ("fp16", "int8", "int4", "int3"):
        size = wasm.forecast_size(spec, tier, browser)
        assert size == gguf.forecast_size(spec, tier, browser) and size.method.startswith("llama.cpp ")
    assert forecast(reg, spec, browser, "int4").size_bytes == gguf.forecast_size(spec, "int4", browser).bytes


def test_kolm_ui_gets_the_verify_page_with_everything_it_loads():
    from importlib.resources import files

    page = registry().ui_pages()["verify"]
    folder = files(page.package).joinpath(page.folder)
    html = folder.joinpath(page.entry).read_text()
    for module in ("verify-page.js", "runtime.js", "verify.js", "wllama/index.js", "wllama/wllama.wasm"):
        assert folder.joinpath(module).is_file(), module
    assert 'src="verify-page.js"' in html
