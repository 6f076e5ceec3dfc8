"""kolm-coreml end to end on SmolLM2-135M-Instruct: a stateful iOS 18 package at every tier with the
size forecast within 1 %, the manifest in its metadata, the compression read back from its MIL
program, K measured on its own weights, verify's six checks (a tampered weights file is caught on a
tiny model in test_families.py), and one line naming macOS where Core ML prediction is needed.

CI exports fp16 and int4 (the iPhone's default); int8 and int3 are the long run's (`tox -e coreml --
-m long`): on 2 cores they took 2.6 and 6 minutes (2026-11-29), and test_families.py compresses every
family's tiny model at every tier in CI."""

from __future__ import annotations

import json

import pytest
from kolm_testing import failed, invoke, verify

pytestmark = pytest.mark.slow
CI_TIERS = ("fp16", "int4")
TIERS = [t if t in CI_TIERS else pytest.param(t, marks=pytest.mark.long) for t in ("fp16", "int8", "int4", "int3")]
# SmolLM2: 30 layers x 7 projections + the tied embedding = 211 weight matrices
TYPES = {
    "fp16": "211 fp16",
    "int8": "211 int8 per channel",
    "int4": "211 int4 block 32",
    "int3": "211 3-bit LUT group 32",
}
PACKAGE = "model.mlpackage"


def read_payload(exported):
    from kolm.api import RunRequest
    from kolm.plugins import registry

    payload = [p.path for p in exported.record.payload]
    return registry().backend("coreml").read_payload(RunRequest(path=exported.folder, payload=payload))


@pytest.mark.parametrize("tier", TIERS)
def test_every_tier_is_a_package_within_one_percent_of_its_forecast(smol_export, tier):
    exported = smol_export(tier)
    names = [p.path for p in exported.record.payload]
    assert names[0] == f"{PACKAGE}/Data/com.apple.CoreML/model.mlmodel"
    assert {f"{PACKAGE}/Manifest.json", f"{PACKAGE}/Data/com.apple.CoreML/weights/weight.bin"} <= set(names)
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= set(names)
    assert abs(exported.record.size_check.error_percent) < 1.0, exported.record.size_check


@pytest.mark.parametrize("tier", TIERS)
def test_manifest_and_compression_read_back_from_the_package(smol_export, tier):
    facts = read_payload(smol_export(tier))
    assert json.loads(facts.manifest_json)["quant"] == tier
    assert facts.tier == tier and facts.types == TYPES[tier]


def test_the_package_is_stateful_with_flexible_shapes_for_ios_18(smol_export):
    from kolm_coreml.package import load_spec

    spec = load_spec(smol_export("int4").folder / PACKAGE)
    assert spec.specificationVersion >= 9  # iOS 18 / macOS 15
    states = {s.name: list(s.type.stateType.arrayType.shape) for s in spec.description.state}
    assert states == {"keyCache": [30, 1, 3, 2048, 64], "valueCache": [30, 1, 3, 2048, 64]}
    inputs = {i.name: i.type.multiArrayType for i in spec.description.input}
    ids, mask = inputs["inputIds"], inputs["causalMask"]
    assert [(r.lowerBound, r.upperBound) for r in ids.shapeRange.sizeRanges] == [(1, 1), (1, 2048)]
    assert [(r.lowerBound, r.upperBound) for r in mask.shapeRange.sizeRanges][2:] == [(1, 2048), (1, 2048)]
    assert [o.name for o in spec.description.output] == ["logits"]


def test_k_is_measured_on_the_packages_own_weights_and_says_how(smol_export):
    k = smol_export("int4").record.k
    assert k.items == 3 and k.fp16_reference is not None and k.fidelity.positions > 0
    assert "PyTorch" in k.runtime and "decompresses from model.mlpackage" in k.runtime and "macOS" in k.runtime


@pytest.mark.long
def test_int8_keeps_the_token_distributions_close_and_int3_does_not(smol_export):
    # int8 per channel keeps the token distributions close to fp16's; int3 palettization does not
    int8, int3 = smol_export("int8").record.k.fidelity, smol_export("int3").record.k.fidelity
    assert int8.mean_kl < int3.mean_kl / 5


def test_verify_passes_its_six_checks(smol_export, smol_pack):
    """On the real model; a tampered weight file is caught on a tiny one (test_families)."""
    code, evidence = verify(smol_export("int4").folder, smol_pack)
    assert code == 0 and failed(evidence) == [], evidence


def test_run_and_bench_name_macos_in_one_line_on_linux(smol_export):
    import platform

    if platform.system() == "Darwin":
        pytest.fail("this test is for machines without Core ML; on macOS the requires_macos tests run instead")
    folder = smol_export("int4").folder
    for command in (("run", folder, "--prompt", "Hi", "-n", "4"), ("bench", folder)):
        result = invoke(*command)
        assert result.exit_code == 8, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("kolm: error:")]
        assert len(errors) == 1 and "macOS 15" in errors[0] and "Traceback" not in result.stderr, result.stderr


@pytest.mark.requires_macos
def test_core_ml_runs_the_package_and_answers(macos, smol_export):
    result = invoke("run", smol_export("int8").folder, "--prompt", "What is the capital of France?", "-n", "16")
    assert result.exit_code == 0 and "Paris" in result.stdout, result.output
