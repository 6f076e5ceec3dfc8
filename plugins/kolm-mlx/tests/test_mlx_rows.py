"""kolm-mlx's rows and forecast: Apple Silicon with its RAM options, calibrated from mlx-lm figures."""

from kolm.forecast import forecast
from kolm.modelspec import resolve_model
from kolm.plugin_data import read_data
from kolm.plugins import registry


def test_m3_rows_list_their_memory_options_and_sources():
    table = registry().devices()
    pro, big = table.find("m3-pro"), table.find("Apple M3 Max")
    assert pro.memory_options_gb == [18, 36] and pro.memory_kind == "unified"
    assert pro.bandwidth_gbps.value == 150 and big.bandwidth_gbps.value == 400
    assert pro.backends[0] == "mlx"
    shipped = read_data("kolm_mlx", "devices").devices  # the table may also hold this machine's row
    assert all(r.bandwidth_gbps.source.startswith(("https://", "http://")) for r in shipped)


def test_forecast_uses_the_mlx_calibration_and_memory_option():
    reg = registry()
    pro = reg.devices().find("m3-pro")
    f = forecast(reg, resolve_model("Llama-3.1-8B"), pro, "fp16")
    assert f.backend == "mlx" and f.tok_s.method == "forecast"
    assert any("mlx" in s for s in f.forecast_sources)
    assert f.fit.verdict == "tight"  # 16 GB of weights + 1 GB runtime on the 18 GB M3 Pro
    assert forecast(reg, resolve_model("Llama-3.1-8B"), pro, "fp16", memory_gb=36).fit.verdict == "pass"


def test_what_mlx_lm_has_no_model_for_is_refused_before_converting():
    """Read from the installed mlx-lm (its models/ and MODEL_REMAPPING), not from a copied list."""
    from kolm_mlx.support import cannot_load
    from kolm_testing import config_spec

    def refusal(arch: str, model_type: str) -> str | None:
        return cannot_load(config_spec({"architectures": [arch], "model_type": model_type}))

    assert refusal("LlamaForCausalLM", "llama") is None
    assert refusal("MistralForCausalLM", "mistral") is None  # remapped to llama by mlx-lm
    assert refusal("Gemma3ForCausalLM", "gemma3_text") is None
    assert refusal("NovelForCausalLM", "novel") == "mlx-lm has no model for model_type 'novel' (NovelForCausalLM)"


def test_a_mixture_of_experts_goes_to_gguf_on_a_mac_with_the_reason_mlx_gives():
    """kolm's MLX size model and tier check cover dense models only, so mlx refuses Qwen3-30B-A3B up
    front; a Mac's pick then takes its next backend (llama.cpp, which exports it), and its speed is
    the labelled ceiling of the active experts' bytes (no band is calibrated on a mixture of experts)."""
    reg = registry()
    mac = reg.devices().find("Apple M4 Max")
    spec = resolve_model("Qwen3-30B-A3B")
    named = forecast(reg, spec, mac, "int4", backend="mlx")
    assert named.command is None and "do not cover a mixture of experts" in named.refusal
    picked = forecast(reg, spec, mac, "int4")
    assert picked.backend == "gguf" and picked.refusal is None
    assert picked.command == "kolm export Qwen3-30B-A3B.kolm --target apple-m4-max --quant int4"
    assert picked.tok_s.method == "ceiling" and "none on a mixture of experts" in picked.tok_s.basis
    assert picked.read_per_token_bytes < picked.size_bytes / 5  # 8 of 128 experts, 3.3 B of 30.5 B


def header_of(tensors) -> dict:
    return {name: {"dtype": dtype, "shape": list(shape)} for name, dtype, shape in tensors}


def test_each_recipe_is_read_back_module_by_module_and_a_mismatch_is_none():
    """The read-back (`recipe_of`) against what the size rule says each recipe writes; the real
    files are read back by every export test (kolm verify's check 4)."""
    from kolm_mlx.quant_plan import quantization, recipe_of, stored_tensors

    spec = resolve_model("SmolLM2-135M")
    declared = read_data("kolm_mlx", "backend")
    recipes = declared.recipes()
    for tier, recipe in recipes:
        tensors, paths = stored_tensors(spec, recipe.options)
        config = {"quantization": quantization(recipe.options, paths)} if recipe.options["quantize"] else {}
        assert recipe_of(header_of(tensors), config, recipes) == (tier, recipe.name)
    # config.json says 8-bit embeddings, the tensors hold them at 5 bits: no recipe
    options = declared.tiers["int4"].options
    tensors, paths = stored_tensors(spec, {**options, "embedding_bits": 5})
    assert recipe_of(header_of(tensors), {"quantization": quantization(options, paths)}, recipes) is None
