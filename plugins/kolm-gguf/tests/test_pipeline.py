"""The GGUF pipeline on real models, checked against the files it writes: pack -> export at every
tier -> forecast vs actual size, embedded manifest, per-tensor types, hashes, and stock llama.cpp
loading the result. Fixtures (conftest.py) pack and export each model once per session."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from kolm.artifact import Artifact
from kolm.cli import cli
from kolm.export import export_artifact
from kolm.modelspec import resolve_model
from kolm.plugins import registry
from kolm_gguf.gguf_file import MANIFEST_KEY, read_header
from kolm_gguf.plugin import ftypes
from kolm_gguf.quant_plan import plan_types
from kolm_gguf.size import gguf_tensors

TIERS = ("fp16", "int8", "int4", "int3")
SPELLING = {"fp16": "F16", "int8": "Q8_0", "int4": "Q4_K_M", "int3": "Q3_K_S"}

pytestmark = pytest.mark.slow  # every test here needs a packed model (session fixtures)


def kolm(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def preview(artifact: Path, tier: str) -> dict:
    result = kolm("export", artifact, "--target", "raspberry-pi-5", "--quant", tier, "--preview", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def packed_k(artifact: Path) -> float:
    with Artifact(artifact) as art:
        return art.manifest.k_score


# ----------------------------------------------------------------------------------------------
# pack


def test_pack_from_gguf_prints_one_summary_line(smol_pack):
    assert smol_pack.stdout.splitlines() == [
        f"wrote {smol_pack.path}: SmolLM2-135M-Instruct, 134,515,008 params, 6 files, 3 eval items, "
        f"K {packed_k(smol_pack.path):.3f} (fp16 through gguf, gate 0.00)"
    ]


def test_pack_from_gguf_holds_float16_safetensors_and_a_measured_k(smol_pack, tmp_path):
    with Artifact(smol_pack.path) as art:
        manifest, inventory = art.manifest, art.inventory()
        art.extract_model(tmp_path / "model")  # checks every payload file's SHA-256 on the way
        assert [item.id for item in art.eval_items()] == ["capital", "sum", "sky"]
    assert manifest.base == "SmolLM2-135M-Instruct" and manifest.arch == "LlamaForCausalLM"
    assert manifest.quant == "fp16" and manifest.params == 134_515_008
    assert inventory.dtype_bytes() == {"F16": 2 * inventory.params}
    assert manifest.k_score_fp16_reference is not None
    assert manifest.k_score == manifest.k_score_fp16_reference
    assert 0 < manifest.k_score < 1  # the pack holds one item SmolLM2-135M gets wrong (2 + 2)
    names = {p.path for p in manifest.payload}
    assert {"model/config.json", "model/model.safetensors", "model/tokenizer.json"} <= names


def test_pack_is_deterministic(smol_pack, small_eval_pack, tmp_path):
    """The same inputs give the same bytes (sorted members, fixed timestamps), here through the API."""
    from kolm.pack import pack_folder

    with Artifact(smol_pack.path) as art:
        folder = art.extract_model(tmp_path / "SmolLM2-135M-Instruct")
    again = tmp_path / "again.kolm"
    pack_folder(folder, small_eval_pack, "SmolLM2-135M-Instruct", again, "unspecified")  # no registry: K unmeasured
    with zipfile.ZipFile(smol_pack.path) as a, zipfile.ZipFile(again) as b:
        members = [i.filename for i in a.infolist()]
        assert members == [i.filename for i in b.infolist()]
        for name in members:
            if name != "manifest.json":  # differs only by the K fields
                assert a.getinfo(name).CRC == b.getinfo(name).CRC, name


# ----------------------------------------------------------------------------------------------
# export, every tier, SmolLM2


@pytest.mark.parametrize("tier", TIERS)
def test_export_writes_the_named_gguf_and_its_record(smol_export, tier):
    export = smol_export(tier)
    assert sorted(p.name for p in export.folder.iterdir()) == sorted(
        [f"SmolLM2-135M-Instruct.{SPELLING[tier]}.gguf", "binder.json", "kolm-export.json"]
    )
    record = export.record
    assert (record.backend, record.device, record.tier, record.spelling) == (
        "gguf",
        "Raspberry Pi 5",
        tier,
        SPELLING[tier],
    )
    assert export.printed == json.loads((export.folder / "kolm-export.json").read_text())


@pytest.mark.parametrize("tier", TIERS)
def test_record_sha256_and_size_are_the_files(smol_export, tier):
    export = smol_export(tier)
    [entry] = export.record.payload
    assert entry.sha256 == sha256(export.main)
    assert entry.size == export.main.stat().st_size == export.record.size_check.actual_bytes


def forecast_vs_file(pack, export, tier: str) -> int:
    """The preview's size forecast for `pack` at `tier`, asserted within 1% of the exported file."""
    actual = export.main.stat().st_size
    forecast = preview(pack.path, tier)["size_bytes"]
    assert abs(forecast - actual) / actual < 0.01, (forecast, actual)
    return forecast


@pytest.mark.parametrize("tier", TIERS)
def test_size_forecast_is_within_one_percent(smol_pack, smol_export, tier):
    export = smol_export(tier)
    forecast = forecast_vs_file(smol_pack, export, tier)
    check = export.record.size_check
    assert check.forecast_bytes == forecast and abs(check.error_percent) < 1.0


@pytest.mark.parametrize("tier", TIERS)
def test_gguf_embeds_the_manifest_with_tier_and_measured_k(smol_pack, smol_export, tier):
    export = smol_export(tier)
    embedded = json.loads(read_header(export.main).get(MANIFEST_KEY))
    with Artifact(smol_pack.path) as art:
        packed = art.manifest
    assert embedded["schema"] == "RS-1" and embedded["base"] == "SmolLM2-135M-Instruct"
    assert embedded["quant"] == tier
    assert embedded["k_score"] == export.record.k.score
    assert embedded["k_score_fp16_reference"] == packed.k_score_fp16_reference == export.record.k.fp16_reference
    assert embedded["payload"] == [p.model_dump() for p in packed.payload]  # the weights it came from
    assert export.record.manifest.model_dump(mode="json", by_alias=True) == embedded
    k = export.record.k
    assert k.items == 3 and k.drop_points == round(100 * (k.fp16_reference - k.score), 4)


@pytest.mark.parametrize("tier", TIERS)
def test_tensor_types_are_the_quant_plans(smol_pack, smol_export, tier):
    """Every tensor in the file has the ggml type kolm_gguf.quant_plan forecast for it."""
    export = smol_export(tier)
    planned = gguf_tensors(resolve_model(str(smol_pack.path)))
    in_file = {name: (shape, kind) for name, shape, kind in read_header(export.main).tensors}
    assert {name: shape for name, shape, _ in planned} == {name: shape for name, (shape, _) in in_file.items()}
    assert plan_types(planned, ftypes()[tier]) == {name: kind for name, (_, kind) in in_file.items()}


@pytest.mark.parametrize("tier", TIERS)
def test_fidelity_to_the_fp16_export_is_measured(smol_export, tier):
    record = smol_export(tier).record
    binder = json.loads((smol_export(tier).folder / "binder.json").read_text())
    if tier == "fp16":
        assert record.k.fidelity is None and binder["fidelity"] is None
        return
    fidelity = record.k.fidelity  # top-1 over 36 positions: int3 measured 0.61, one flip = 2.8 points
    assert fidelity.positions > 0 and 0.4 < fidelity.top1_agreement <= 1.0 and fidelity.mean_kl > 0
    assert binder["fidelity"] == fidelity.model_dump()
    assert [item["id"] for item in binder["k"]["items"]] == ["capital", "sum", "sky"]


def test_fidelity_orders_the_tiers(smol_export):
    kl = {tier: smol_export(tier).record.k.fidelity.mean_kl for tier in ("int8", "int4", "int3")}
    assert kl["int8"] < kl["int4"] < kl["int3"]


def test_preview_after_export_shows_the_measured_k_loss(smol_pack, smol_export):
    exported = smol_export("int8")
    data = json.loads(
        kolm("export", smol_pack.path, "--target", "raspberry-pi-5", "--quant", "int8", "--preview", "--json").stdout
    )
    assert data["k_loss_method"].startswith("measured by kolm export ")
    assert data["k_loss_points"] == exported.record.k.drop_points


def test_int4_file_mixes_types_as_llama_cpp_does(smol_export):
    """SmolLM2's 576-wide rows are not multiples of 256, so most Q4_K_M tensors fall back to Q5_0."""
    types = {name: kind for name, _, kind in read_header(smol_export("int4").main).tensors}
    assert types["token_embd.weight"] == "Q8_0"  # tied output: Q6_K wanted, 576 % 256 != 0
    assert types["blk.0.attn_q.weight"] == "Q5_0" and types["blk.0.attn_norm.weight"] == "F32"
    assert types["blk.0.ffn_down.weight"] == "Q6_K"  # 1536-wide rows, first layers get more bits


@pytest.mark.parametrize("tier", TIERS)
def test_export_loads_in_stock_llama_cpp_and_generates(smol_export, tier):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(smol_export(tier).main), n_ctx=128, n_threads=2, seed=0, verbose=False)
    try:
        out = llm("The capital of France is", max_tokens=4, temperature=0.0, repeat_penalty=1.0)
    finally:
        llm.close()
    text = out["choices"][0]["text"]
    assert out["usage"]["completion_tokens"] >= 1 and text.strip(), out
    assert "Paris" in text  # greedy SmolLM2 answers " Paris." at every tier


def test_export_output_is_readable_by_others(smol_export):
    """The export gets the umask's permissions (022 here), not mkdtemp's 0700: another user can read it."""
    folder = smol_export("int4").folder
    assert folder.stat().st_mode & 0o055 == 0o055
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in folder.iterdir())


# ----------------------------------------------------------------------------------------------
# reproducibility


def test_same_artifact_exports_to_the_same_bytes(smol_pack, smol_export, tmp_path):
    """A second int4 export into another folder, through the library call, matches byte for byte."""
    first = smol_export("int4")
    reg = registry()
    device = reg.devices().find("raspberry-pi-5")
    check = first.record.size_check
    record = export_artifact(
        reg,
        smol_pack.path,
        device,
        "int4",
        "gguf",
        tmp_path / "again",
        check.forecast_bytes,
        check.read_per_token_bytes,
    )
    assert record.payload == first.record.payload
    assert sha256(tmp_path / "again" / first.main.name) == sha256(first.main)
    assert record.lockfile == first.record.lockfile and record.k == first.record.k


# ----------------------------------------------------------------------------------------------
# random-weight Llama: untied head, rows divisible by 256 (pure K-quants, no fallbacks)


def test_random_llama_packs_with_k_measured(random_pack):
    with Artifact(random_pack.path) as art:
        manifest = art.manifest
    assert manifest.base == "rand-llama" and manifest.k_score_fp16_reference is not None
    assert random_pack.stdout.startswith(f"wrote {random_pack.path}: rand-llama, 28,313,856 params, ")


@pytest.mark.parametrize("tier", TIERS)
def test_random_llama_size_forecast_is_within_one_percent(random_pack, random_export, tier):
    export = random_export(tier)
    forecast_vs_file(random_pack, export, tier)
    assert export.record.payload[0].sha256 == sha256(export.main)


@pytest.mark.parametrize("tier", TIERS)
def test_random_llama_tensor_types_are_the_quant_plans(random_pack, random_export, tier):
    planned = gguf_tensors(resolve_model(str(random_pack.path)))
    in_file = {name: kind for name, _, kind in read_header(random_export(tier).main).tensors}
    assert "output.weight" in in_file  # untied head
    assert plan_types(planned, ftypes()[tier]) == in_file
