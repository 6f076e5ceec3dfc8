#!/usr/bin/env python3
"""Refresh kolm-gguf's vendored copy of llama.cpp's HF -> GGUF converter from the llama-cpp-python
sdist kolm-gguf pins, so conversion (this converter and its gguf-py) and quantization (the pinned
library) come from the same llama.cpp commit.

Copies, unmodified: convert_hf_to_gguf.py, conversion/, gguf-py/gguf/ (with gguf-py's LICENSE) and
llama.cpp's LICENSE into src/kolm_gguf/vendor/llama.cpp/, and writes VENDORED.json there: the
sdist's version and SHA-256, the llama.cpp commit, the Hugging Face architectures the converter
registers (its TEXT_MODEL_MAP, read without importing it, so kolm can say what it supports without
torch) and every file's SHA-256. Needs pip and the network (the package registry only). Run from
anywhere:

    python plugins/kolm-gguf/scripts/refresh_llama_cpp.py
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[1]
TARGET = PLUGIN / "src" / "kolm_gguf" / "vendor" / "llama.cpp"
COPIED = ("convert_hf_to_gguf.py", "conversion", "gguf-py/gguf", "gguf-py/LICENSE", "LICENSE")


def pinned_version() -> str:
    """The llama-cpp-python version kolm-gguf's pyproject.toml pins."""
    text = (PLUGIN / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'"llama-cpp-python\[server\]==([^"]+)"', text).group(1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def submodule_commit(root: Path) -> str:
    """The llama.cpp commit the sdist vendors (its submodule HEAD, shipped in the sdist's .git)."""
    return (root / ".git" / "modules" / "vendor" / "llama.cpp" / "HEAD").read_text().strip()


def text_architectures(conversion_init: Path) -> list[str]:
    """The keys of `TEXT_MODEL_MAP` in conversion/__init__.py: the text models the converter registers."""
    for node in ast.parse(conversion_init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "TEXT_MODEL_MAP":
            return sorted(ast.literal_eval(node.value))
    raise SystemExit(f"{conversion_init}: no TEXT_MODEL_MAP; the converter's layout changed")


def main() -> None:
    version = pinned_version()
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"llama-cpp-python=={version}",
                "-d",
                work,
            ],
            check=True,
        )
        sdist = next(Path(work).glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        root = Path(work) / f"llama_cpp_python-{version}"
        source = root / "vendor" / "llama.cpp"
        shutil.rmtree(TARGET, ignore_errors=True)
        for name in COPIED:
            src, dst = source / name, TARGET / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copyfile(src, dst)
        files = sorted(p for p in TARGET.rglob("*") if p.is_file())
        record = {
            "source": f"llama-cpp-python {version} sdist (PyPI), vendor/llama.cpp",
            "sdist_sha256": sha256(sdist),
            "llama.cpp_commit": submodule_commit(root),
            "license": "MIT (LICENSE, gguf-py/LICENSE)",
            "architectures": text_architectures(TARGET / "conversion" / "__init__.py"),
            "files": {str(p.relative_to(TARGET)): sha256(p) for p in files},
        }
    (TARGET / "VENDORED.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"vendored {len(files)} files of llama.cpp {record['llama.cpp_commit'][:12]} into {TARGET}")


if __name__ == "__main__":
    main()
