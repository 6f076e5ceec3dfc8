"""Every decoder family kolm forecasts, in the browser bundle at every tier: a tiny random-weight
model of each (kolm_testing.FAMILY_CONFIGS) packs, exports with `--target browser` at its forecast
size, answers and verifies natively, and at int4 loads in wllama in headless Chromium, answers,
and passes the six checks in the tab. Random weights: the K gates are opened.

CI bundles each family once, at int4 (the bundle the tab loads), and checks it in the tab (the six
checks, wllama answering); the native run and verify of a family's bundle is CI's for one family
(llama3), the long run's for the others and the other tiers: the bundle's GGUF is the gguf backend's
export, which that backend's own family sweep exports, runs and verifies at every tier in CI, and
test_bundle.py bundles SmolLM2 at int3 and split into parts."""

from __future__ import annotations

import functools

import pytest
from kolm_testing import (
    FAMILY_CONFIGS,
    OPPOSITE_ITEM,
    exports_runs_and_verifies,
    invoke,
    pack_family,
)
from wasm_harness import bundler, kolm_serve, open_page, verified_tab_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_kolm_home")]

TIERS = ("fp16", "int8", "int4", "int3")
NATIVE_CI = ("llama3", "int4")  # the one native run and verify of a family's bundle in CI


@pytest.fixture(scope="module")
def family_of(smol_pack, tmp_path_factory):
    """family_of(name): (packed .kolm, bundle(tier) -> (folder, what export printed)), packed once per
    family in any test order (a parametrized module fixture is made again each time pytest-randomly
    interleaves its params)."""

    @functools.cache
    def family(name: str):
        root = tmp_path_factory.mktemp(name)
        artifact = pack_family(name, root, smol_pack, [OPPOSITE_ITEM])
        return artifact, bundler(artifact, root)

    return family


@pytest.fixture
def family(request, family_of):
    """(packed .kolm, bundle(tier)) of the family `request.param`."""
    return family_of(request.param)


NATIVE = [
    pytest.param(family, tier, marks=() if (family, tier) == NATIVE_CI else pytest.mark.long, id=f"{family}-{tier}")
    for family in sorted(FAMILY_CONFIGS)
    for tier in TIERS
]


@pytest.mark.parametrize(("family", "tier"), NATIVE, indirect=["family"])
def test_the_bundle_has_the_forecast_size_answers_and_verifies(family, tier):
    artifact, bundle = family
    folder, printed = bundle(tier)
    exports_runs_and_verifies(artifact, folder, printed, "--raw", "--prompt", "The sky is", "-n", "4")


@pytest.mark.requires_browser
@pytest.mark.parametrize("family", sorted(FAMILY_CONFIGS), indirect=True)
def test_wllama_runs_it_and_the_tab_verifies_it(family, chromium):
    artifact, bundle = family
    folder, _ = bundle("int4")
    tab, run = verified_tab_run(chromium, folder, artifact, "The sky is")
    assert tab["passed"], tab
    assert tab["checks"][3]["found"].startswith("int4 (")
    assert run["text"].strip()


@pytest.mark.requires_browser
@pytest.mark.parametrize("family", ["llama3"], indirect=True)
def test_the_tab_fails_a_tampered_part(family, chromium, tmp_path, monkeypatch):
    """The int4 bundle split in two parts, 64 bytes of the last one zeroed: the tab's payload check
    fails, naming that part."""
    artifact, bundle = family
    [whole] = bundle("int4")[0].glob("*.gguf")
    monkeypatch.setenv("KOLM_WASM_PART_BYTES", str(whole.stat().st_size * 2 // 3))
    folder = tmp_path / "parts"
    result = invoke("export", artifact, "--target", "browser", "--quant", "int4", "-o", folder, "--allow-drop")
    assert result.exit_code == 0, result.output
    [part] = folder.glob("*-00002-of-00002.gguf")
    with open(part, "r+b") as f:
        f.seek(-64, 2)
        f.write(bytes(64))
    tab, _ = verified_tab_run(chromium, folder, artifact, "The sky is", 1)
    failed = [c["name"] for c in tab["checks"] if not c["passed"]]
    assert not tab["passed"] and "payload SHA-256 matches" in failed
    assert part.name in tab["checks"][1]["found"]


@pytest.mark.requires_browser
def test_a_model_without_a_chat_template_continues_the_prompt_in_the_page(smol_pack, chromium, tmp_path):
    artifact = pack_family("llama3", tmp_path, smol_pack, [OPPOSITE_ITEM], chat_template=False)
    out = tmp_path / "base-browser"
    assert (
        invoke("export", artifact, "--target", "browser", "--quant", "int4", "-o", out, "--allow-drop").exit_code == 0
    )
    with kolm_serve(out) as served:
        run = open_page(chromium, served.url).evaluate("window.kolm.run('The sky is', 8)")
    assert run["mode"] == "completion" and run["text"].strip()
