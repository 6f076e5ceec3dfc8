"""`kolm verify` on GGUF exports: a good export passes all six checks; tampering with what the GGUF
itself carries (its embedded manifest, its tensor types) fails the check that reads it back. The
checks every backend shares (hashes, eval pack, gate, bad inputs) are tested in kolm-core."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from kolm.cli import cli
from kolm_gguf.gguf_file import MANIFEST_KEY, read_header, set_string
from kolm_testing import VERIFY_CHECKS, failed, verify

pytestmark = pytest.mark.slow  # needs the session's packed SmolLM2 and its exports


@pytest.fixture
def int4_copy(smol_export, tmp_path) -> Path:
    """A private copy of the int4 export, safe to tamper with."""
    return Path(shutil.copytree(smol_export("int4").folder, tmp_path / "int4"))


def relabel(export: Path, **changes) -> None:
    """Change manifest fields both in the payload and in kolm-export.json, as a forger would."""
    record_path = export / "kolm-export.json"
    record = json.loads(record_path.read_text())
    record["manifest"].update(changes)
    record_path.write_text(json.dumps(record))
    gguf = export / record["payload"][0]["path"]
    embedded = json.loads(read_header(gguf).get(MANIFEST_KEY))
    embedded.update(changes)
    set_string(gguf, MANIFEST_KEY, json.dumps(embedded))
    import hashlib

    record["payload"][0]["sha256"] = hashlib.sha256(gguf.read_bytes()).hexdigest()
    record["payload"][0]["size"] = gguf.stat().st_size
    record_path.write_text(json.dumps(record))


def test_a_good_export_passes_all_six(smol_pack, int4_copy):
    code, evidence = verify(int4_copy, smol_pack.path)
    assert code == 0 and evidence["passed"] and failed(evidence) == []
    assert [c["name"] for c in evidence["checks"]] == VERIFY_CHECKS
    assert len(evidence["binder"]["k"]["items"]) == 3
    recorded = json.loads((int4_copy / "kolm-export.json").read_text())["k"]["fidelity"]
    assert evidence["binder"]["fidelity"] == recorded  # regenerated from a fresh fp16 export, same numbers


def test_human_table_and_exit_code(smol_pack, int4_copy):
    result = CliRunner().invoke(cli, ["verify", str(int4_copy), "--against", str(smol_pack.path), "--min-k", "0"])
    assert result.exit_code == 0 and "6 of 6 checks passed" in result.stdout
    assert "binder    K " in result.stdout and "fidelity  top-1 agreement" in result.stdout


def test_a_relabelled_tier_fails_check_4(smol_pack, int4_copy):
    relabel(int4_copy, quant="int8")
    code, evidence = verify(int4_copy, smol_pack.path)
    assert failed(evidence) == [4]
    check = evidence["checks"][3]  # the quant relabelled, the recipe left: both are compared
    assert check["expected"] == "int8, recipe Q4_K_M (manifest)" and check["found"].startswith("int4, recipe Q4_K_M (")


def test_an_edited_recorded_k_fails_check_5(smol_pack, int4_copy):
    relabel(int4_copy, k_score=0.123)
    code, evidence = verify(int4_copy, smol_pack.path)
    assert 5 in failed(evidence) and evidence["checks"][4]["expected"].startswith("0.1230")


def test_a_swapped_in_export_fails(smol_pack, smol_export, int4_copy):
    int4 = next(int4_copy.glob("*.gguf"))
    shutil.copyfile(smol_export("int8").main, int4)
    code, evidence = verify(int4_copy, smol_pack.path)
    assert code == 11 and {1, 2} <= set(failed(evidence))  # another manifest, other bytes


def test_a_payload_without_manifest_fails_check_1(smol_pack, int4_copy):
    relabel(int4_copy)  # re-hash only
    gguf = next(int4_copy.glob("*.gguf"))
    set_string(gguf, MANIFEST_KEY, "{not json")
    code, evidence = verify(int4_copy, smol_pack.path)
    assert 1 in failed(evidence) and evidence["checks"][0]["found"].startswith("not valid RS-1")
