"""The Core ML family matrix: a tiny random-weight model of each decoder family kolm-testing knows
(FAMILY_CONFIGS) converts to a stateful package and compresses at int8, its compression reads back,
and its weights load back into the family's transformers model (what K is measured on under Linux).
Each family kolm-coreml claims in support.CONVERTED is here; a mixture of experts is refused before
anything converts. Random weights make K meaningless: these exports are not scored."""

from __future__ import annotations

from pathlib import Path

import pytest
from kolm.api import RunRequest
from kolm.plugins import registry
from kolm_coreml.runtime import WeightsSession
from kolm_coreml.support import CONVERTED
from kolm_testing import FAMILY_CONFIGS, MOE_CONFIGS, PARIS_ITEM, export_unscored, invoke, pack_family, random_family

pytestmark = pytest.mark.slow


def test_every_family_it_claims_is_tested_here():
    claimed = {FAMILY_CONFIGS[f]["architectures"][0] for f in FAMILY_CONFIGS}
    assert claimed == CONVERTED


@pytest.mark.parametrize("family", sorted(FAMILY_CONFIGS))
def test_family_converts_compresses_reads_back_and_scores(family, smol_pack: Path, tmp_path):
    packed = pack_family(family, tmp_path, smol_pack, [PARIS_ITEM])
    out = tmp_path / "export"
    record = export_unscored(packed, "iphone-15-pro", "int8", out)
    payload = [p.path for p in record.payload]
    facts = registry().backend("coreml").read_payload(RunRequest(path=out, payload=payload))
    assert facts.tier == "int8", facts.types
    session = WeightsSession(out)
    assert session.position_logprobs("The capital of France is").shape[0] > 1


@pytest.mark.parametrize("family", sorted(MOE_CONFIGS))
def test_a_mixture_of_experts_is_refused_before_converting(family, smol_pack: Path, tmp_path):
    folder = random_family(family, tmp_path / family, smol_pack)
    result = invoke("export", folder, "--target", "iphone-15-pro", "--quant", "int4", "--preview", "--json")
    assert result.exit_code == 0, result.output
    assert "mixture of experts" in result.stdout
