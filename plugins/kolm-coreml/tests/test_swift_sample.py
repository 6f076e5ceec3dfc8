"""The Xcode handoff's Swift sample parses: with `swiftc -parse` where a Swift toolchain exists
(macOS, or Linux with swift.org's toolchain), else with tree-sitter's Swift grammar (a syntax check
only: nothing is type-checked or compiled without swiftc)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SWIFT = sorted((Path(__file__).parents[1] / "swift").rglob("*.swift"))


def syntax_errors(source: bytes) -> list[tuple[int, int]]:
    """Where tree-sitter's Swift grammar finds an error or a missing token, as (row, column)."""
    import tree_sitter
    import tree_sitter_swift

    root = tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language())).parse(source).root_node
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            found.append(node.start_point)
        stack.extend(node.children)
    return found


def test_the_sample_has_its_package_manifest_and_sources():
    assert {p.name for p in SWIFT} == {"Package.swift", "KolmChat.swift"}


@pytest.mark.parametrize("path", SWIFT, ids=lambda p: p.name)
def test_the_swift_sample_parses(path):
    if shutil.which("swiftc"):
        result = subprocess.run(["swiftc", "-parse", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    else:
        assert syntax_errors(path.read_bytes()) == []


def test_the_syntax_check_catches_a_broken_file():
    assert syntax_errors(b"func reply( { let x = }")
