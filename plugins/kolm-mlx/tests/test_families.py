"""Every decoder family kolm forecasts, on mlx at every tier (in CI each family at one tier, every
tier by some family: kolm_testing.sweep): a tiny random-weight model of each
(kolm_testing.FAMILY_CONFIGS) packs, converts with mlx_lm at its forecast size, runs a greedy
completion and verifies; every other recipe backend.json lists does the same on llama3, whose
untied `lm_head` is a module of its own for `embedding_bits` (the tied families take the default's
8-bit embedding above). Random weights: K says nothing, so the gates are opened."""

from __future__ import annotations

import functools

import pytest
from kolm.plugin_data import read_data
from kolm_testing import (
    FAMILY_CONFIGS,
    OPPOSITE_ITEM,
    cli_exporter,
    exports_runs_and_verifies,
    pack_family,
    sweep,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_kolm_home")]

TIERS = ("fp16", "int8", "int4", "int3")


@pytest.fixture(scope="module")
def family_of(smol_pack, tmp_path_factory):
    """family_of(name): (packed .kolm, export(tier, recipe=None)), packed once per family."""

    @functools.cache
    def family(name: str):
        root = tmp_path_factory.mktemp(name)
        artifact = pack_family(name, root, smol_pack, [OPPOSITE_ITEM])
        return artifact, cli_exporter(artifact, root, "m3-pro", "--allow-drop")

    return family


@pytest.mark.parametrize(("family", "tier"), sweep(sorted(FAMILY_CONFIGS), TIERS))
def test_it_converts_at_the_forecast_size_runs_and_verifies(family, tier, family_of):
    artifact, export = family_of(family)
    done = export(tier)
    exports_runs_and_verifies(artifact, done.folder, done.printed, "--raw", "--prompt", "The sky is", "-n", "4")


DECLARED = read_data("kolm_mlx", "backend")
ALTERNATIVES = [(tier, recipe.name) for tier, others in DECLARED.alternatives.items() for recipe in others]


@pytest.mark.parametrize(("tier", "recipe"), ALTERNATIVES)
def test_every_other_recipe_converts_at_its_forecast_size_and_reads_back(tier, recipe, family_of):
    artifact, export = family_of("llama3")
    done = export(tier, recipe)
    assert done.record.manifest.recipe == done.record.lockfile.recipe == recipe
    exports_runs_and_verifies(artifact, done.folder, done.printed, "--raw", "--prompt", "The sky is", "-n", "4")
