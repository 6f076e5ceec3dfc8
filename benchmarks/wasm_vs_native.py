#!/usr/bin/env python3
"""The browser bundle against native llama.cpp on the same GGUF (SmolLM2-135M-Instruct).

1. generation: tg tok/s of wllama (llama.cpp in WebAssembly, multi-threaded, in headless Chromium
   on the `kolm serve` page) vs llama-cpp-python on the same file with the same thread count.
   Both are llama.cpp's own decode rate: wllama's `timings.predicted_per_second` over n_gen tokens
   (ignore_eos), and llama-cpp-python's llm.eval loop over n_gen tokens (as kolm bench does). The
   ratio calibrates kolm-wasm's throughput.json.
2. load: page load to model ready, cold (fresh browser profile: download + OPFS write) vs cached
   (reload: wllama reads the OPFS copy; the server log shows no second GET of the weights).

    .venv/bin/python benchmarks/wasm_vs_native.py [--runs 3] [--tier int4] [--n-gen 128]
Needs: apt-get install chromium; pip install playwright.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import CACHE, llama_eval_tg, smollm2_artifact  # noqa: E402
from kolm_testing.fixtures import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def export_bundle(artifact: Path, tier: str, out: Path) -> Path:
    from kolm.export import export_artifact
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.plugins import registry

    reg = registry()
    device = reg.devices().find("browser")
    planned = forecast(reg, resolve_model(str(artifact)), device, tier)
    record = export_artifact(
        reg, artifact, device, tier, "wasm", out, planned.size_bytes, planned.read_per_token_bytes, score=False
    )
    return out / record.payload[0].path


def native_tg(model: Path, n_gen: int, threads: int) -> float:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model), n_ctx=512, n_threads=threads, verbose=False)
    rate = llama_eval_tg(llm, n_gen)
    llm.close()
    return rate


def browser_runs(browser, url: str, n_gen: int) -> tuple[float, float, float]:
    """(cold load s, cached load s, tg tok/s) in a fresh browser context (a fresh OPFS)."""
    context = browser.new_context()
    page = context.new_page()
    ready = "window.kolm && window.kolm.loadSeconds !== null"
    page.goto(url)
    page.wait_for_function(ready, timeout=300_000)
    cold = page.evaluate("window.kolm.loadSeconds")
    page.reload()
    page.wait_for_function(ready, timeout=300_000)
    cached = page.evaluate("window.kolm.loadSeconds")
    timings = page.evaluate(
        """async (n) => (await window.kolm.wllama.createCompletion({prompt: 'Once upon a time',
        max_tokens: n, temperature: 0, ignore_eos: true, stream: false})).timings""",
        n_gen,
    )
    context.close()
    return cold, cached, timings["predicted_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tier", default="int4")
    parser.add_argument("--n-gen", type=int, default=64)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    from kolm_wasm.server import BundleHandler
    from playwright.sync_api import sync_playwright

    artifact = smollm2_artifact()
    cold, cached, gets = [], [], []
    wasm: dict[int, list[float]] = {t: [] for t in args.threads}
    native: dict[int, list[float]] = {t: [] for t in args.threads}
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        folder = Path(work) / "bundle"
        gguf = export_bundle(artifact, args.tier, folder)
        requests: list[str] = []

        class Logged(BundleHandler):
            def log_message(self, format, *a):  # noqa: A002 - http.server's name
                requests.append(format % a)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Logged, directory=str(folder)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(args.runs):  # interleaved, so machine noise hits both sides alike
                for threads in args.threads:
                    before = len(requests)
                    url = f"http://127.0.0.1:{httpd.server_address[1]}/?threads={threads}"
                    c, w, tg = browser_runs(browser, url, args.n_gen)
                    gets.append(sum(1 for line in requests[before:] if '"GET /' in line and ".gguf" in line))
                    cold.append(c)
                    cached.append(w)
                    wasm[threads].append(tg)
                    native[threads].append(native_tg(gguf, args.n_gen, threads))
            browser.close()
        httpd.shutdown()
        size = gguf.stat().st_size

    med = statistics.median
    print(
        f"SmolLM2-135M-Instruct {args.tier}, {size / 2**20:.0f} MiB GGUF, {args.runs} interleaved runs, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n"
    )
    print(f"{'generation, tg' + str(args.n_gen) + ' (tok/s)':<56}{'median':>8} {'min':>7} {'max':>7}")
    for threads in args.threads:
        w, n = wasm[threads], native[threads]
        print(f"{f'wllama 3.13.0 in Chromium, {threads} thread(s)':<56}{med(w):8.1f} {min(w):7.1f} {max(w):7.1f}")
        print(f"{f'llama-cpp-python, same GGUF, {threads} thread(s)':<56}{med(n):8.1f} {min(n):7.1f} {max(n):7.1f}")
        print(f"  ratio browser / native at {threads} thread(s) (medians): {med(w) / med(n):.2f}x")
    print(f"\n{'load to ready (s)':<56}{'median':>8} {'min':>7} {'max':>7}")
    print(f"{'cold: fresh profile, download + OPFS write':<56}{med(cold):8.2f} {min(cold):7.2f} {max(cold):7.2f}")
    print(f"{'cached: reload, read from OPFS':<56}{med(cached):8.2f} {min(cached):7.2f} {max(cached):7.2f}")
    print(f"weight GETs per cold load + reload: {gets} (1 = the reload downloaded nothing)")


if __name__ == "__main__":
    main()
