"""The Core ML family matrix: a tiny random-weight model of each decoder family kolm-testing knows
(FAMILY_CONFIGS) converts to a stateful package and compresses at int8, its compression reads back,
and its weights load back into the family's transformers model (what K is measured on off macOS).
Each family kolm-coreml claims in support.CONVERTED is here. Gemma's families convert (a long test),
but every forecast and export refuses them (their folded norms cannot be scored off macOS), as it
refuses a mixture of experts. Random weights make K meaningless: nothing is scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from kolm.api import RunRequest
from kolm.plugins import registry
from kolm_coreml.runtime import WeightsSession
from kolm_coreml.support import CONVERTED, FOLDED_NORMS_FAMILIES
from kolm_testing import FAMILY_CONFIGS, MOE_CONFIGS, PARIS_ITEM, export_unscored, invoke, pack_family, random_family

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_kolm_home")]
ARCH = {family: config["architectures"][0] for family, config in FAMILY_CONFIGS.items()}
EXPORTED = sorted(f for f in FAMILY_CONFIGS if ARCH[f] in CONVERTED)
FOLDED = sorted(f for f in FAMILY_CONFIGS if ARCH[f] in FOLDED_NORMS_FAMILIES)


def test_every_family_kolm_testing_knows_is_exported_or_refused_here():
    assert set(ARCH.values()) == CONVERTED | FOLDED_NORMS_FAMILIES


@pytest.mark.parametrize("family", EXPORTED)
def test_family_exports_reads_back_and_loads_its_weights(family, smol_pack: Path, tmp_path):
    packed = pack_family(family, tmp_path, smol_pack, [PARIS_ITEM])
    out = tmp_path / "export"
    record = export_unscored(packed, "iphone-15-pro", "int8", out)
    payload = [p.path for p in record.payload]
    facts = registry().backend("coreml").read_payload(RunRequest(path=out, payload=payload))
    assert facts.tier == "int8", facts.types
    assert WeightsSession(out).position_logprobs("The capital of France is").shape[0] > 1


@pytest.mark.parametrize("family", FOLDED)
def test_gemma_is_refused_before_converting(family, smol_pack: Path, tmp_path):
    folder = random_family(family, tmp_path / family, smol_pack)
    result = invoke("export", folder, "--target", "iphone-15-pro", "--quant", "int8", "--preview", "--json")
    assert result.exit_code == 0, result.output
    assert "folds its (1 + w) norm weights" in json.loads(result.stdout)["refusal"]


@pytest.mark.long  # ~40 s a family on 2 cores: what kolm refuses, coremltools still converts
@pytest.mark.parametrize("family", FOLDED)
def test_gemma_converts_in_coremltools(family, smol_pack: Path, tmp_path):
    from kolm_coreml.convert import compress, context_length, convert
    from kolm_coreml.package import kind_of, weight_ops, weights

    folder = random_family(family, tmp_path / family, smol_pack)
    config = json.loads((folder / "config.json").read_text())
    options = {**registry().backend("coreml").recipe("int8").options, "weight_threshold": 2048}
    compress(convert(folder, context_length(config)), options).save(str(tmp_path / "model.mlpackage"))
    kinds = {kind_of(op) for op in weight_ops(weights(tmp_path / "model.mlpackage")).values()}
    assert kinds == {"int8 per channel"}


@pytest.mark.parametrize("family", sorted(MOE_CONFIGS))
def test_a_mixture_of_experts_is_refused_before_converting(family, smol_pack: Path, tmp_path):
    folder = random_family(family, tmp_path / family, smol_pack)
    result = invoke("export", folder, "--target", "iphone-15-pro", "--quant", "int4", "--preview", "--json")
    assert result.exit_code == 0, result.output
    assert "mixture of experts" in json.loads(result.stdout)["refusal"]


@pytest.mark.parametrize("recipe", ["int4-block16"])
def test_an_int4_alternative_exports_and_reads_back_as_itself(recipe, smol_pack: Path, tmp_path):
    """`--recipe` on a tiny Llama: the size within 1 %, and verify's check 4 reads the recipe back;
    a copy with one byte of weight.bin flipped fails check 2 (exit 11)."""
    from kolm_testing import failed, verify

    packed = pack_family("llama3", tmp_path, smol_pack, [PARIS_ITEM])
    out = tmp_path / "export"
    result = invoke("export", packed, "--target", "iphone-15-pro", "--quant", "int4", "--recipe", recipe,
                    "-o", out, "--json", "--allow-drop")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert abs(json.loads(result.stdout)["size_check"]["error_percent"]) < 1.0
    _, evidence = verify(out, packed)
    assert 4 not in failed(evidence) and f"recipe {recipe}" in evidence["checks"][3]["found"], evidence["checks"][3]

    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    weights = tampered / "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin"
    with open(weights, "r+b") as f:
        f.seek(weights.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    code, evidence = verify(tampered, packed)
    assert code == 11 and 2 in failed(evidence), evidence
