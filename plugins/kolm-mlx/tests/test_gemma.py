"""The real Gemma 3 270M on mlx: packed from PyPI's chunked GGUF (SHA-256 checked, imported by
kolm-gguf), its fp16 K measured through mlx-lm, converted by mlx_lm at int4 at its forecast size,
run (no chat template: the prompt is continued) and verified. A base model: gates opened. The
other tiers take the same path with other bits (every family's tiny model covers them in
test_families.py); run by hand on 2026-11-28, all four passed here in 267 s, over CI's budget.
Long (`tox -e mlx -- -m long`): the int4 export alone took 5 minutes on 2 cores (2026-11-29)."""

from __future__ import annotations

import json

import pytest
from kolm_testing import cli_exporter, exports_runs_and_verifies, invoke, pack_gemma3

pytestmark = [pytest.mark.slow, pytest.mark.long]

# Least top-1 agreement with fp16 on the three items' 23 positions: int4 measured 0.74 here when it
# was 4-bit g64, 3 positions above this floor; the 5-bit default agrees more (93 % vs 62 % on the
# default pack, README).
TOP1_AGREEMENT = 0.6


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    """(packed .kolm, export(tier))."""
    root = tmp_path_factory.mktemp("gemma")
    artifact = pack_gemma3(root)
    return artifact, cli_exporter(artifact, root, "m3-pro", "--allow-drop")


def test_its_fp16_k_is_measured_through_mlx(gemma):
    manifest = json.loads(invoke("inspect", gemma[0], "--json").stdout)["manifest"]
    assert manifest["arch"] == "Gemma3ForCausalLM" and manifest["k_score_fp16_reference"] is not None


def test_int4_exports_at_the_forecast_size_runs_and_verifies(gemma):
    artifact, export = gemma
    done = export("int4")  # size measured +0.0004 % from the forecast
    assert done.printed["k"]["fidelity"]["top1_agreement"] > TOP1_AGREEMENT
    exports_runs_and_verifies(artifact, done.folder, done.printed, "--prompt", "The capital of France is", "-n", "8")
