"""Helpers the browser bundle tests share: `kolm` in-process, `kolm serve` in a subprocess with its
request log, and the page driven until the model has loaded (see conftest.py for the fixtures)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SMALL_PART = 40 * 2**20  # forces a 105 MB int4 SmolLM2 into three parts


@dataclass
class Served:
    url: str
    log: list[str] = field(default_factory=list)  # one line per request, from the server's stderr

    def requests(self, pattern: str) -> list[str]:
        return [line for line in self.log if re.search(pattern, line)]


@contextmanager
def kolm_serve(folder: Path, verify: Path | None = None) -> Iterator[Served]:
    """`kolm serve FOLDER --port 0 [--verify ART]` in a subprocess; the printed URL and request log."""
    command = [sys.executable, "-c", "from kolm.cli import cli; cli()", "serve", str(folder), "--port", "0"]
    if verify is not None:
        command += ["--verify", str(verify)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, f"kolm serve printed no URL: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        served = Served(match.group(0))
        threading.Thread(target=lambda: served.log.extend(iter(proc.stderr.readline, "")), daemon=True).start()
        yield served
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def open_page(browser, url: str, context=None):
    """A page on `url` (in `context`, else a fresh one) once the model has loaded."""
    page = (context or browser.new_context()).new_page()
    page.goto(url)
    page.wait_for_function(
        "window.kolm && (window.kolm.wllama || document.getElementById('status').textContent.startsWith('error'))",
        timeout=120_000,
    )
    status = page.text_content("#status")
    assert status.startswith("ready"), status
    return page


def verify_in_tab(page) -> dict:
    """Wait for the verify panel's result (it runs by itself under `kolm serve --verify`)."""
    page.wait_for_function("window.kolm.verification", timeout=300_000)
    return page.evaluate("window.kolm.verification")


def bundler(artifact: Path, root: Path) -> Callable[[str], tuple[Path, dict]]:
    """bundle(tier): `kolm export ARTIFACT --target browser --quant TIER -o ROOT/browser-TIER --json
    --allow-drop`, once per tier: (the folder, what export printed)."""
    from kolm_testing import invoke

    done: dict[str, tuple[Path, dict]] = {}

    def bundle(tier: str) -> tuple[Path, dict]:
        if tier not in done:
            out = root / f"browser-{tier}"
            result = invoke(
                "export", artifact, "--target", "browser", "--quant", tier, "-o", out, "--json", "--allow-drop"
            )
            assert result.exit_code == 0, result.output
            done[tier] = out, json.loads(result.stdout)
        return done[tier]

    return bundle


def verified_tab_run(chromium, folder: Path, artifact: Path, prompt: str, n: int = 8) -> tuple[dict, dict]:
    """`kolm serve FOLDER --verify ARTIFACT` in Chromium, gates opened (`?min_k=0`): (the tab's six
    checks, `window.kolm.run(prompt, n)`)."""
    with kolm_serve(folder, verify=artifact) as served:
        page = open_page(chromium, served.url + "?min_k=0")
        tab = verify_in_tab(page)
        run = page.evaluate(f"window.kolm.run({json.dumps(prompt)}, {n})")
    return tab, run
