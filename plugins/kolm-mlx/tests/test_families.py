"""Every decoder family kolm forecasts, on mlx at every tier: a tiny random-weight model of each
(kolm_testing.FAMILY_CONFIGS) packs, converts with mlx_lm at its forecast size, runs a greedy
completion and verifies. Random weights: K says nothing, so the gates are opened."""

from __future__ import annotations

import pytest
from kolm_testing import (
    FAMILY_CONFIGS,
    OPPOSITE_ITEM,
    cli_exporter,
    exports_runs_and_verifies,
    pack_family,
)

pytestmark = pytest.mark.slow

TIERS = ("fp16", "int8", "int4", "int3")


@pytest.fixture(scope="module", params=sorted(FAMILY_CONFIGS))
def family(request, smol_pack, tmp_path_factory):
    """(packed .kolm, export(tier))."""
    root = tmp_path_factory.mktemp(request.param)
    artifact = pack_family(request.param, root, smol_pack, [OPPOSITE_ITEM])
    return artifact, cli_exporter(artifact, root, "m3-pro", "--allow-drop")


@pytest.mark.parametrize("tier", TIERS)
def test_it_converts_at_the_forecast_size_runs_and_verifies(family, tier):
    artifact, export = family
    done = export(tier)
    exports_runs_and_verifies(artifact, done.folder, done.printed, "--raw", "--prompt", "The sky is", "-n", "4")
