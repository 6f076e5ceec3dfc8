"""kolm-onnx end to end on SmolLM2-135M-Instruct and a random untied Llama: export at each tier
with the size forecast within 1%, the manifest in metadata_props, K and fidelity recorded, verify,
run, the shared server, bench. Real toolchain on CPU (onnxruntime-genai)."""

from __future__ import annotations

import json
import shutil

import pytest
from kolm_testing import api_server, http_json

pytestmark = pytest.mark.slow
TIERS = ("fp16", "int8", "int4")
# SmolLM2's 151 weight MatMuls; at int4, lm_head and the qkv and down projections of the 14 layers
# llama.cpp's rule picks of 30 (0-3, 6, 9, ..., 24, 27-29) are 8-bit
TYPES = {
    "fp16": "151 MatMul float32",
    "int8": "151 MatMulNBits bits=8 block=32 accuracy=4",
    "int4": "122 MatMulNBits bits=4 block=32 accuracy=4, 29 MatMulNBits bits=8 block=32 accuracy=4",
}


def read_payload(folder, record):
    from kolm.api import RunRequest
    from kolm.plugins import registry

    return registry().backend("onnx").read_payload(RunRequest(path=folder, payload=[p.path for p in record.payload]))


@pytest.mark.parametrize("tier", TIERS)
def test_phone_export_is_one_copy_of_the_model_within_one_percent(smol_export, tier):
    exported = smol_export(tier)
    names = [p.path for p in exported.record.payload]
    assert {"model.onnx", "model.onnx.data", "genai_config.json", "tokenizer.json"} <= set(names)
    assert not [n for n in names if n.endswith(".ort")]
    assert abs(exported.record.size_check.error_percent) < 1.0, exported.record.size_check


@pytest.mark.parametrize("tier", TIERS)
def test_manifest_and_tier_read_back_from_the_graph(smol_export, tier):
    exported = smol_export(tier)
    facts = read_payload(exported.folder, exported.record)
    assert json.loads(facts.manifest_json)["quant"] == tier
    assert facts.tier == tier
    assert facts.types == TYPES[tier]


@pytest.mark.parametrize("tier", ("int8", "int4"))
def test_k_and_fidelity_are_recorded(smol_export, tier):
    k = smol_export(tier).record.k
    assert k.items == 3 and k.fp16_reference is not None and k.drop_points is not None
    assert k.fidelity.positions > 0 and 0.0 <= k.fidelity.top1_agreement <= 1.0 and k.fidelity.mean_kl >= 0.0


def test_int8_is_faithful_to_fp16(smol_export):
    """Over these 36 positions one flipped near-tie moves top-1 agreement by 2.8 points, and which
    near-ties flip depends on the CPU (int8 measured 0.889 and 0.917 on two machines of this kind).
    KL is the continuous measure (int8 0.0067 nats, int4 0.53): the bounds leave four flips of
    margin on top-1 and a factor of seven on KL."""
    int8, int4 = smol_export("int8").record.k.fidelity, smol_export("int4").record.k.fidelity
    assert int8.mean_kl < 0.05 and int8.mean_kl < int4.mean_kl / 5
    assert int8.top1_agreement >= 0.8


def test_untied_model_for_a_laptop_within_one_percent(random_export):
    for tier in TIERS:
        record = random_export(tier).record
        assert abs(record.size_check.error_percent) < 1.0, (tier, record.size_check)


def test_verify_passes_six_checks(kolm, smol_export, smol_pack):
    result = kolm("verify", smol_export("int8").folder, "--against", smol_pack, "--min-k", "0.6", "--json")
    assert result.exit_code == 0, result.output
    checks = json.loads(result.stdout)["checks"]
    assert [c["passed"] for c in checks] == [True] * 6


def test_verify_fails_on_a_tampered_file(kolm, smol_export, smol_pack, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(smol_export("int4").folder, tampered)
    with open(tampered / "genai_config.json", "a", encoding="utf-8") as f:
        f.write(" ")
    result = kolm("verify", tampered, "--against", smol_pack, "--json")
    assert result.exit_code != 0
    checks = {c["number"]: c for c in json.loads(result.stdout)["checks"]}
    assert not checks[2]["passed"] and "genai_config.json" in checks[2]["found"]


def test_run_prints_a_greedy_answer(kolm, smol_export):
    result = kolm("run", smol_export("fp16").folder, "--prompt", "What is the capital of France?", "-n", "12")
    assert result.exit_code == 0, result.output
    assert "Paris" in result.stdout


def test_run_port_serves_the_openai_api(smol_export, tmp_path):
    """`kolm run EXPORT --port P`: kolm's own server (kolm.server) around the ONNX session."""
    with api_server(smol_export("fp16").folder, tmp_path) as server:
        assert [m["id"] for m in server.models["data"]] == ["SmolLM2-135M-Instruct"]
        chat = http_json(
            server.base + "/chat/completions",
            {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 12},
        )
        assert "Paris" in chat["choices"][0]["message"]["content"]
        usage = chat["usage"]  # counted by the ONNX session (kolm.api.Generation), not estimated
        assert usage["prompt_tokens"] > 7 and 1 <= usage["completion_tokens"] <= 12
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert chat["choices"][0]["finish_reason"] == ("length" if usage["completion_tokens"] == 12 else "stop")
        cut = http_json(
            server.base + "/completions",
            {"prompt": "The capital of France is", "max_tokens": 12, "stop": "Paris"},
        )
        assert "Paris" not in cut["choices"][0]["text"] and cut["choices"][0]["finish_reason"] == "stop"


def test_bench_measures_this_machine(kolm, smol_export):
    result = kolm(
        "bench",
        smol_export("int4").folder,
        "--n-prompt",
        "32",
        "--n-gen",
        "16",
        "-r",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    measured = json.loads(result.stdout)["result"]
    assert measured["runtime"].startswith("onnxruntime-genai")
    assert measured["tg"]["mean"] > 0 and measured["pp"]["mean"] > 0 and len(measured["tg"]["samples"]) == 2
    assert measured["load_s"] > 0 and measured["peak_rss_bytes"] > 0


def test_reexport_gives_the_same_payload_hash(random_export, random_pack):
    from kolm.export import check_reproducible
    from kolm.plugins import registry

    reg = registry()
    exported = random_export("int4")
    again = check_reproducible(reg, random_pack, reg.devices().find("x-elite"), "int4", "onnx", exported.folder)
    assert again.same, again.differences
