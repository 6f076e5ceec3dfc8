"""Every decoder family kolm forecasts, on gguf at every tier (in CI each family at one tier, every
tier by some family: kolm_testing.sweep): a tiny random-weight model of each
(kolm_testing.FAMILY_CONFIGS, and the mixture of experts in MOE_CONFIGS) packs, exports through
llama.cpp's own converter and quantizer with its size forecast exact to 1 % and its tensor types
llama.cpp's, runs a greedy completion, and verifies. Random weights: K says nothing, so the gates
are opened (--min-k 0, --allow-drop)."""

from __future__ import annotations

import functools
import json
import zipfile

import pytest
from kolm.inventory import config_inventory
from kolm_testing import (
    FAMILY_CONFIGS,
    MOE_CONFIGS,
    OPPOSITE_ITEM,
    cli_exporter,
    exports_runs_and_verifies,
    invoke,
    pack_family,
    random_family,
    sweep,
    write_eval_pack,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_kolm_home")]

TIERS = ("fp16", "int8", "int4", "int3")
ITEMS = [OPPOSITE_ITEM, {"id": "sky", "kind": "contains", "prompt": "The sky is", "answer": "blue"}]


FAMILIES = sorted(FAMILY_CONFIGS | MOE_CONFIGS)


@pytest.fixture(scope="module")
def family_of(smol_pack, tmp_path_factory):
    """family_of(name): (name, its packed .kolm, export(tier)), packed once per family in any test order
    (a parametrized module fixture is made again each time pytest-randomly interleaves its params)."""

    @functools.cache
    def family(name: str):
        root = tmp_path_factory.mktemp(name)
        artifact = pack_family(name, root, smol_pack.path, ITEMS)
        return name, artifact, cli_exporter(artifact, root, "raspberry-pi-5", "--allow-drop")

    return family


@pytest.fixture
def family(request, family_of):
    """(family name, its packed .kolm, export(tier)) of the family `request.param`."""
    return family_of(request.param)


@pytest.mark.parametrize("family", FAMILIES, indirect=True)
def test_the_config_inventory_is_what_transformers_builds(family, tmp_path):
    """kolm's config-only tensor list (what forecasts by base name rest on) names and shapes every
    tensor transformers' own model class writes for the family (`save_pretrained`: a mixture of
    experts one tensor per expert, as published checkpoints hold them)."""
    name, artifact, _ = family
    pytest.importorskip("transformers")
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    with zipfile.ZipFile(artifact) as art:
        config = json.loads(art.read("model/config.json"))
    AutoModelForCausalLM.from_config(AutoConfig.for_model(**config)).save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "np") as saved:
        written = {key: tuple(saved.get_slice(key).get_shape()) for key in saved.keys()}  # noqa: SIM118
    assert {t.name: t.shape for t in config_inventory(config).tensors} == written


@pytest.mark.parametrize(("family", "tier"), sweep(FAMILIES, TIERS), indirect=["family"])
def test_it_exports_at_the_forecast_size_runs_and_verifies(family, tier):
    name, artifact, export = family
    done = export(tier)  # verify's check 4: llama.cpp's tensor types are the tier's plan
    exports_runs_and_verifies(artifact, done.folder, done.printed, "--raw", "--prompt", "The sky is", "-n", "4")


@pytest.fixture(scope="module")
def qwen2_with_smollm2_tokenizer(smol_pack, tmp_path_factory):
    """A Qwen2 carrying SmolLM2's BPE tokenizer: transformers reads it as Qwen2Tokenizer, whose
    pre-tokenizer llama.cpp's converter cannot identify. Packed: (artifact, what pack printed)."""
    root = tmp_path_factory.mktemp("qwen2-bpe")
    folder = random_family("qwen2", root / "qwen2-bpe", smol_pack.path, sentencepiece=False)
    artifact = root / "qwen2-bpe.kolm"
    eval_pack = write_eval_pack(root / "items.jsonl", ITEMS)
    packed = invoke("pack", folder, "--eval", eval_pack, "-o", artifact, "--min-k", "0")
    assert packed.exit_code == 0, packed.output
    return artifact, packed.output


def test_a_tokenizer_the_converter_cannot_identify_is_recorded_when_packing(qwen2_with_smollm2_tokenizer):
    artifact, printed = qwen2_with_smollm2_tokenizer
    assert "K not measured" in printed and "BPE pre-tokenizer was not recognized" in printed
    manifest = json.loads(invoke("inspect", artifact, "--json").stdout)["manifest"]
    assert "BPE pre-tokenizer was not recognized" in manifest["refusals"]["gguf"]


def test_then_gguf_is_refused_before_anything_converts(qwen2_with_smollm2_tokenizer, tmp_path):
    artifact, _ = qwen2_with_smollm2_tokenizer
    preview = invoke("export", artifact, "--target", "raspberry-pi-5", "--quant", "int4", "--preview", "--json")
    planned = json.loads(preview.stdout)
    assert "BPE pre-tokenizer was not recognized" in planned["refusal"] and planned["command"] is None
    out = tmp_path / "out"
    result = invoke("export", artifact, "--target", "raspberry-pi-5", "--quant", "int4", "-o", out)
    assert result.exit_code == 6 and "gguf cannot export qwen2-bpe" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
