"""No code of kolm's loads a pickle: an AST scan of kolm-core and every plugin (vendored third-party
code excluded, and kept off pickles by what kolm feeds it: `kolm pack` and the RS-1 reader refuse
`.bin`/`.pt`/`.pkl` weights) for the imports and calls that unpickle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNPICKLING = {("pickle", "load"), ("pickle", "loads"), ("torch", "load"), ("joblib", "load"), ("dill", "load")}


def sources() -> list[Path]:
    roots = [ROOT / "kolm-core" / "src", *sorted((ROOT / "plugins").glob("*/src"))]
    return [p for root in roots for p in root.rglob("*.py") if "vendor" not in p.parts]


def unpickling(path: Path) -> list[str]:
    """`LINE what` for each unpickling import or call in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            pickled = node.func.attr == "load" and any(k.arg == "allow_pickle" for k in node.keywords)
            if (name, node.func.attr) in UNPICKLING or pickled:
                found.append(f"{node.lineno} {name}.{node.func.attr}")
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{node.lineno} imports {n}" for n in names if n in ("pickle", "dill")]
    return found


def test_the_scan_would_catch_a_pickle(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import torch\nimport pickle\nstate = torch.load('x.pt')\nnp.load('a.npy', allow_pickle=True)\n")
    assert sorted(unpickling(probe)) == ["2 imports pickle", "3 torch.load", "4 np.load"]


def test_no_code_of_kolms_unpickles():
    files = sources()
    assert len(files) > 50  # every package was scanned
    assert [f"{path.relative_to(ROOT)}:{call}" for path in files for call in unpickling(path)] == []
