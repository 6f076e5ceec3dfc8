"""The bundle's page in real headless Chromium: Run streams an answer, a reload reads the weights
from the browser's cache, and the six verify checks run in the tab and agree with `kolm verify`."""

from __future__ import annotations

import json
import re

import pytest
from kolm_testing import invoke, screenshot
from wasm_harness import SMALL_PART, kolm_serve, open_page, verify_in_tab

pytestmark = pytest.mark.requires_browser
WEIGHTS = r'"GET /[^ ]*\.gguf HTTP/1\.1" 200'


def test_chat_answers_paris_and_a_reload_does_not_download_the_weights_again(bundle, chromium):
    with kolm_serve(bundle("int4")) as served:
        context = chromium.new_context()
        page = open_page(chromium, served.url, context)
        assert page.evaluate("crossOriginIsolated") is True  # COOP/COEP: the multi-threaded build
        threads = page.evaluate("navigator.hardwareConcurrency")
        assert page.text_content("#status").endswith(f"{threads} thread(s)")
        assert re.fullmatch(r"1 part\(s\), \d+ MiB, K \d\.\d{3} on 3 eval items", page.text_content("#facts"))
        assert page.input_value("#prompt") == "What is the capital of France?"  # the defaults, as a newcomer finds them
        page.click("#run")
        page.wait_for_function("window.kolm.lastRun", timeout=120_000)
        screenshot(page, "bundle-chat")
        run = page.evaluate("window.kolm.lastRun")
        assert "Paris" in run["text"] and page.text_content("#output") == run["text"]
        assert run["mode"] == "chat"  # SmolLM2-Instruct's own chat template
        assert run["tokens"] < 128  # stopped at the end of its turn, not at the token limit
        assert run["tokensPerSecond"] > 0 and "tokens/s" in page.text_content("#speed")
        page.check("#raw")  # the raw toggle: the text as it is, no template
        raw = page.evaluate("window.kolm.run('The capital of France is', 8)")
        assert raw["mode"] == "completion" and raw["text"].startswith(" Paris")
        assert len(served.requests(WEIGHTS)) == 1
        page.reload()
        page.wait_for_function("window.kolm && window.kolm.wllama", timeout=120_000)
        assert page.text_content("#status").startswith("ready")
        assert len(served.requests(WEIGHTS)) == 1, served.log  # the reload read wllama's OPFS cache
        context.close()


def test_verify_in_the_tab_agrees_with_kolm_verify(bundle, smol_pack, chromium):
    """On a bundle in three parts, the six checks in the tab and `kolm verify` agree check by check
    (K from wllama = K from llama-cpp-python) and pass (a tampered part: test_families.py)."""
    good = bundle("int4", part_bytes=SMALL_PART)
    native = json.loads(invoke("verify", good, "--against", smol_pack, "--min-k", "0", "--json").stdout)
    with kolm_serve(good, verify=smol_pack) as served:
        page = open_page(chromium, served.url + "?min_k=0")
        tab = verify_in_tab(page)
    assert [c["name"] for c in tab["checks"]] == [c["name"] for c in native["checks"]]
    assert [c["passed"] for c in tab["checks"]] == [c["passed"] for c in native["checks"]]
    assert tab["checks"][4]["found"] == native["checks"][4]["found"]
    assert page.get_attribute("#checks", "data-passed") == str(native["passed"]).lower()
    assert tab["passed"], [c for c in tab["checks"] if not c["passed"]]
    assert tab["checks"][3]["found"].startswith("int4 (")  # tensor types read from all three parts


@pytest.mark.long  # 2.5 minutes on 2 cores (2026-11-29): wllama scores SmolLM2 in one browser; families cover int3
def test_int3_bundle_answers_and_verifies_in_the_tab(bundle, smol_pack, chromium):
    with kolm_serve(bundle("int3"), verify=smol_pack) as served:
        page = open_page(chromium, served.url + "?min_k=0")
        tab = verify_in_tab(page)
        run = page.evaluate("window.kolm.run('Say hello.', 16)")
    assert tab["passed"], [c for c in tab["checks"] if not c["passed"]]
    assert tab["checks"][3]["found"].startswith("int3 (")
    assert run["text"].strip()
