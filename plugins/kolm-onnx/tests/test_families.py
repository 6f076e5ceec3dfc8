"""The ONNX family matrix: a tiny random-weight model of each decoder family kolm-testing knows
(FAMILY_CONFIGS) x each onnx tier (in CI each family at one tier, every tier by some family:
kolm_testing.sweep), exported for a Pixel 8 with the size forecast within 1 %, run and
verified; or, where the installed onnxruntime-genai builder fails on the family, refused by every
forecast and export before anything is converted. Random weights make K meaningless, hence
`--allow-drop` and `--min-k 0`."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from kolm.plugin_data import read_data
from kolm_testing import FAMILY_CONFIGS, OPPOSITE_ITEM, failed, invoke, pack_family, random_family, sweep, verify

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_kolm_home")]
TIERS = ("fp16", "int8", "int4")
PHONE = "pixel-8"
# Families onnxruntime-genai 0.18.0's builder names but fails on, with the start of onnx's reason.
REFUSED = {"gemma3": "onnxruntime-genai 0.18.0's model builder fails on Gemma3ForCausalLM: "}
BUILT = sorted(set(FAMILY_CONFIGS) - set(REFUSED))
DECLARED = read_data("kolm_onnx", "backend")
ALTERNATIVES = [(tier, recipe.name) for tier, others in DECLARED.alternatives.items() for recipe in others]


@pytest.fixture(scope="module")
def packed_of(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory):
    """packed_of(family): (Hugging Face folder, .kolm): `kolm pack FOLDER --min-k 0`, once per family
    in any test order (a parametrized module fixture is made again each time pytest-randomly interleaves its params)."""

    @functools.cache
    def packed(family: str) -> tuple[Path, Path]:
        folder = random_family(family, tmp_path_factory.mktemp(family) / family, smol_pack)
        artifact = folder.with_suffix(".kolm")
        pack = smol_pack.parent / "small.jsonl"
        result = invoke("pack", folder, "--eval", pack, "-o", artifact, "--min-k", "0")
        assert result.exit_code == 0, result.output
        return folder, artifact

    return packed


@pytest.fixture
def packed(request, packed_of) -> tuple[Path, Path]:
    """(Hugging Face folder, .kolm) of the family `request.param`."""
    return packed_of(request.param)


@pytest.mark.parametrize(("packed", "tier"), sweep(BUILT, TIERS), indirect=["packed"])
def test_exports_within_one_percent_runs_and_verifies(packed, tier, tmp_path):
    _, artifact = packed
    out = tmp_path / "export"
    result = invoke("export", artifact, "--target", PHONE, "--quant", tier, "-o", out, "--json", "--allow-drop")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert abs(printed["size_check"]["error_percent"]) < 1.0, printed["size_check"]
    names = {p["path"] for p in printed["payload"]}
    assert {"model.onnx", "model.onnx.data", "genai_config.json"} <= names

    ran = invoke("run", out, "--prompt", "What is the capital of France?", "-n", "8")
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.removesuffix("\n"), "no token generated (through the family's chat template)"

    code, evidence = verify(out, artifact)
    assert code == 0 and failed(evidence) == [], evidence


@pytest.mark.parametrize(("tier", "recipe"), ALTERNATIVES)
@pytest.mark.parametrize("packed", ["qwen3"], indirect=True)
def test_every_other_recipe_exports_at_its_forecast_size_and_reads_back(packed, tier, recipe, tmp_path):
    """Each recipe backend.json lists beside a tier's default, on a tied family (SmolLM2 in
    test_onnx_export.py takes the mixed default through all 30 layers)."""
    _, artifact = packed
    out = tmp_path / "export"
    chosen = ("--quant", tier, "--recipe", recipe)
    result = invoke("export", artifact, "--target", PHONE, *chosen, "-o", out, "--json", "--allow-drop")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["manifest"]["recipe"] == recipe and abs(printed["size_check"]["error_percent"]) < 1.0
    code, evidence = verify(out, artifact)
    assert code == 0 and failed(evidence) == [], evidence


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("packed", sorted(REFUSED), indirect=True)
def test_refused_before_converting(packed, tier, tmp_path):
    folder, artifact = packed
    family = artifact.stem
    reason = REFUSED[family]

    picked = invoke("pick", folder, "--target", PHONE, "--quant", tier, "--json")
    assert picked.exit_code == 0, picked.output
    [row] = json.loads(picked.stdout)
    assert row["backend"] == "onnx" and row["refusal"].startswith(reason) and row["command"] is None

    preview = invoke("export", artifact, "--target", PHONE, "--quant", tier, "--preview", "--json")
    assert preview.exit_code == 0, preview.output
    planned = json.loads(preview.stdout)
    assert planned["refusal"].startswith(reason) and planned["refusal"].endswith("(when the model was packed)")
    assert f"onnx cannot export {family}: {planned['refusal']}" in planned["notes"]

    out = tmp_path / "export"
    refused = invoke("export", artifact, "--target", PHONE, "--quant", tier, "-o", out, "--allow-drop")
    assert refused.exit_code != 0
    assert refused.stderr.strip().splitlines()[-1] == f"kolm: error: onnx cannot export {family}: {planned['refusal']}"
    assert not out.exists()


def test_a_model_without_a_chat_template_continues_the_prompt(smol_pack, tmp_path):
    artifact = pack_family("llama3", tmp_path, smol_pack, [OPPOSITE_ITEM], chat_template=False)
    out = tmp_path / "base-onnx"
    assert invoke("export", artifact, "--target", PHONE, "--quant", "int4", "-o", out, "--allow-drop").exit_code == 0
    ran = invoke("run", out, "--prompt", "The sky is", "-n", "4")
    assert ran.exit_code == 0 and ran.stdout.strip(), ran.output
