"""The forecast: fit arithmetic, tier scaling, model references and device names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kolm.errors import BackendError, UnknownDeviceError, UnknownModelError, UsageError
from kolm.forecast import fit_verdict, forecast, pick
from kolm.modelspec import resolve_model
from kolm.quant import parse_tier
from kolm_testing import device_row


@pytest.mark.parametrize(
    "size_gb, memory_gb, verdict",
    [(2.2, 4.0, "pass"), (2.3, 4.0, "tight"), (3.0, 4.0, "tight"), (3.01, 4.0, "over")],
)
def test_fit_thresholds(size_gb: float, memory_gb: float, verdict: str):
    fit = fit_verdict(int(size_gb * 1e9), int(memory_gb * 1e9), "ram")
    assert fit.verdict == verdict
    assert fit.need_bytes == int(size_gb * 1e9) + 1_000_000_000
    assert "runtime" in fit.arithmetic and "GB ram" in fit.arithmetic


def test_tiers_parse_from_user_spellings():
    assert [parse_tier(t) for t in ("INT4", "q4_k_m", "Q3_K_S", "f16", "q8_0")] == [
        "int4",
        "int4",
        "int3",
        "fp16",
        "int8",
    ]
    with pytest.raises(UsageError, match="unknown quant tier 'int2'; use one of: fp16, int8, int4, int3"):
        parse_tier("int2")


def test_reference_base_by_any_spelling():
    assert resolve_model("llama-3.1-8b").name == "Llama-3.1-8B"
    spec = resolve_model("meta-llama/Llama-3.1-8B")
    assert 8.0e9 < spec.inventory.params < 8.1e9  # published: 8.03 B
    assert 134e6 < resolve_model("SmolLM2-135M-Instruct").inventory.params < 136e6
    assert 3.7e9 < resolve_model("Phi-3-mini-3.8B").inventory.params < 3.9e9
    assert 0.49e9 < resolve_model("Qwen2.5-0.5B").inventory.params < 0.50e9


def test_unknown_model_names_the_options():
    with pytest.raises(
        UnknownModelError, match="not a .kolm file, config.json, model folder or known base; known bases: Llama"
    ):
        resolve_model("GPT-5")


def test_config_json_and_folder(hf_folder: Path):
    from_config = resolve_model(str(hf_folder / "config.json"))
    from_folder = resolve_model(str(hf_folder))
    assert from_config.origin == "config" and from_folder.origin == "folder"
    assert from_config.inventory.params == from_folder.inventory.params


def test_unsupported_architecture(tmp_path: Path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(Exception, match="cannot derive tensors for architecture GPT2LMHeadModel"):
        resolve_model(str(config))


def test_device_names_match_loosely(registry):
    table = registry.devices()
    assert table.find("test-board-4").name == table.find("TEST BOARD 4").name == table.find("tb4").name
    with pytest.raises(UnknownDeviceError, match="unknown device 'pi9'; known devices: "):
        table.find("pi9")


def test_forecast_without_backend_plugin_is_nominal_and_says_so(registry, artifact: Path):
    spec = resolve_model(str(artifact))
    board = registry.devices().find("tb4")
    f = forecast(registry, spec, board, "int4")
    assert f.backend == "testbe" and not f.backend_installed
    assert f.size_bytes == int(spec.inventory.params * 4.5 / 8)
    assert f.tok_s.method == "ceiling" and f.tok_s.low == f.tok_s.high
    assert f.k_loss_points == 2.0
    assert f.fit.verdict == "pass"
    assert f.command == f"kolm export {artifact} --target test-board-4 --quant int4"
    assert any("not installed" in n for n in f.notes)


def test_tier_refused_by_backend(registry, artifact: Path):
    from kolm import hookimpl
    from kolm.api import Backend

    class NoInt3:
        @hookimpl
        def backend(self):
            return Backend(
                name="testbe", description="t", tiers={"fp16": "a", "int8": "b", "int4": "c"}, toolchain=[], install="-"
            )

    assert registry.add(NoInt3(), "noint3", "kolm-noint3", "0.1")
    spec = resolve_model(str(artifact))
    board = registry.devices().find("tb4")
    with pytest.raises(BackendError, match="int3 is not supported by testbe; use fp16, int8, int4"):
        forecast(registry, spec, board, "int3")
    assert [r.tier for r in pick(registry, spec, [board])] == ["fp16", "int8", "int4"]


def test_backend_not_serving_device(registry):
    board = registry.devices().find("tb4")
    with pytest.raises(UsageError, match="Test Board 4 is not a gguf target; its backends: testbe"):
        forecast(registry, resolve_model("SmolLM2-135M"), board, "int4", backend="gguf")


def test_memory_override_changes_the_verdict(registry):
    gpu = registry.devices().find("Test GPU")
    spec = resolve_model("Llama-3.2-1B")
    assert forecast(registry, spec, gpu, "fp16").fit.verdict == "over"
    assert forecast(registry, spec, gpu, "fp16", memory_gb=24).fit.verdict == "pass"


def test_context_fits_with_the_kv_cache_of_its_tokens(registry):
    """Llama-3.1-8B: 32 layers x 8 KV heads x 128 x 2 (K and V) x 2 bytes = 128 KiB a token."""
    from kolm.modelspec import resolve_model

    spec = resolve_model("Llama-3.1-8B")
    assert spec.kv_cache_bytes(8192) == 8192 * 131072
    device = registry.devices().find("tb4")  # 4 GB
    flat = forecast(registry, spec, device, "int4")
    long = forecast(registry, spec, device, "int4", context=8192)
    assert flat.fit.overhead_bytes == 1_000_000_000 and long.fit.overhead_bytes == 8192 * 131072
    assert long.fit.need_bytes == long.size_bytes + 8192 * 131072
    assert "KV cache for 8,192 tokens" in long.fit.arithmetic


def test_a_fixed_cost_per_token_is_added_to_the_time_the_bytes_take():
    from kolm.devices import Sourced
    from kolm.throughput import Efficiency, roofline

    cited = "https://example.org/run"
    box = device_row(
        name="Fast GPU", kind="desktop-gpu", memory_gb=24, memory_kind="vram", bandwidth_gbps=1000, backends=["x"]
    )
    band = Efficiency(kinds=["desktop-gpu"], low=0.5, high=1.0, source=cited, note="test")
    plain = roofline(box, 100_000_000, band)  # 1000 GB/s / 0.1 GB: 10,000 tok/s at most
    assert (plain.low, plain.high) == pytest.approx((5000, 10000))
    slow = roofline(box, 100_000_000, band.model_copy(update={"per_token_ms": Sourced(value=1, source=cited)}))
    assert (slow.low, slow.high) == pytest.approx((1 / (0.0002 + 0.001), 1 / (0.0001 + 0.001)))
    assert "plus 1 ms a token" in slow.basis and cited in slow.sources
    one_run = roofline(box, 100_000_000, band.model_copy(update={"low": 0.6, "high": 0.6}))
    assert (one_run.low, one_run.high) == pytest.approx((4500, 7500))  # ± 25 %, never a zero-width band
    assert "one published run at 0.60" in one_run.basis


def test_a_mixture_of_experts_is_sized_by_all_its_parameters_and_timed_by_its_active_ones(registry):
    """Qwen3-30B-A3B's model card: "30.5B in total and 3.3B activated" (8 of 128 experts a token).
    The nominal forecast stores every expert and reads, per token, the shared weights and 8/128 of the
    experts' (not the input embedding, which is untied)."""
    spec = resolve_model("Qwen3-30B-A3B")
    assert spec.inventory.params == pytest.approx(30.5e9, rel=0.005)
    assert spec.active_params == pytest.approx(3.3e9, rel=0.02)
    assert spec.read_share("model.layers.0.mlp.experts.5.up_proj.weight") == 8 / 128
    assert spec.read_share("model.embed_tokens.weight") == 0 and spec.read_share("lm_head.weight") == 1
    f = forecast(registry, spec, registry.devices().find("tb4"), "int4")
    assert f.size_bytes == int(spec.inventory.params * 4.5 / 8)
    embedding = 151936 * 2048
    assert f.read_per_token_bytes == pytest.approx((spec.active_params - embedding) * 4.5 / 8, rel=1e-6)
    assert any("a token reads 8 of 128 experts (3.35 B of 30.53 B parameters active)" in n for n in f.notes)


def test_a_dense_model_reads_every_weight_but_an_untied_input_embedding():
    spec = resolve_model("Llama-3.1-8B")
    assert spec.active_params == spec.inventory.params
    assert spec.read_share("model.layers.3.mlp.down_proj.weight") == 1
    assert spec.read_share("model.embed_tokens.weight") == 0
    assert resolve_model("Qwen3-0.6B").read_share("model.embed_tokens.weight") == 1  # tied: it is the output layer


def test_the_pick_takes_the_devices_next_backend_when_the_first_refuses_the_model(table, table_backend, artifact):
    """A device served by two backends: when its preferred one refuses the model, the forecast and
    the printed command take the other (no --backend needed); naming the refusing one still says why."""
    from kolm import hookimpl
    from kolm.api import Backend

    class Second(type(table_backend)):
        """The table backend under another name, on a box that prefers `table`."""

        @hookimpl
        def backend(self):
            return Backend(name="second", description="t", tiers=self.TIERS, install="-")

        @hookimpl
        def device_profiles(self):
            return [device_row(name="Two Backend Box", backends=["table", "second"])]

    assert table.add(Second(), "second", "kolm-second", "0.1")
    spec = resolve_model(str(artifact))
    box = table.devices().find("Two Backend Box")
    assert forecast(table, spec, box, "int4").backend == "table"
    table_backend.refusal = "no {arch} here"
    chosen = forecast(table, spec, box, "int4")
    assert chosen.backend == "second" and chosen.refusal is None
    assert chosen.command == f"kolm export {artifact} --target two-backend-box --quant int4"
    named = forecast(table, spec, box, "int4", backend="table")
    assert named.command is None and "no LlamaForCausalLM here" in named.refusal


def test_a_logged_k_counts_only_for_the_eval_pack_it_was_measured_on(table, packed):
    """A K measured on another pack (a short one, a site's own) says nothing about this artifact's."""
    from kolm import history
    from kolm.forecast import forecast
    from kolm.manifest import KRecord
    from kolm.modelspec import resolve_model

    spec, box = resolve_model(str(packed)), table.device("ttb")
    k = KRecord(score=0.5, points=50.0, items=2, fp16_reference=1.0, drop_points=50.0, runtime="test")
    for pack in ("0" * 64, spec.eval_pack_sha256):
        entry = history.KEntry(
            model=spec.name, tier="int8", backend="table", recipe="I8", eval_pack=pack, k=k, export="x", measured_at="t"
        )
        history.append("k", entry)
        f = forecast(table, spec, box, "int8")
        assert f.k_loss_method.startswith("measured by kolm export") == (pack == spec.eval_pack_sha256)


def test_the_eval_pack_hash_is_the_one_pack_records_whatever_the_line_endings(tmp_path):
    """The forecast matches a logged K to an artifact by this hash, so it must be the manifest's."""
    from kolm.evalpack import pack_sha256

    line = '{"id": "a", "prompt": "1 + 1 =", "kind": "contains", "answer": "2"}'
    (tmp_path / "lf.jsonl").write_bytes(f"{line}\n".encode())
    (tmp_path / "crlf.jsonl").write_bytes(f"{line}\r\n".encode())
    assert pack_sha256(tmp_path / "crlf.jsonl") == pack_sha256(tmp_path / "lf.jsonl")
