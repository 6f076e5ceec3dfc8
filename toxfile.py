"""tox's inline plugin: uv (tox-uv installs every env) gets this machine's pip settings.

uv reads no pip configuration. Where pip is told to look in a folder of wheels (here the CPU build of
torch 2.13.0) or in local indexes, or is capped by a constraints file, uv would resolve against PyPI
alone and take a CUDA build of torch instead. This hands pip's settings (`pip config list`, which reads
every pip.conf and PIP_* variable) to uv through its own variables; a UV_* variable already set wins.
It also points uv at `.venv/wheels`, where `python3 dev.py test` builds llama-cpp-python's wheel once
with pip (it ships only as source), so that uv does not build it again.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tox.plugin import impl

# pip's setting -> uv's variable; uv splits find-links on commas, the others on spaces, as pip does.
UV_FOR_PIP = {
    "index-url": ("UV_INDEX_URL", " "),
    "extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
    "find-links": ("UV_FIND_LINKS", ","),
    "constraint": ("UV_CONSTRAINT", " "),
    "cert": ("SSL_CERT_FILE", " "),
}

SCOPES = ["global", "install", ":env:"]


def pip_settings() -> dict[str, str]:
    """pip's effective settings by name ("find-links": "/opt/wheels"): a PIP_* variable over [install]
    over [global], as pip ranks them."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    ranked = {}
    for line in listed.splitlines():
        scoped, _, value = line.partition("=")
        scope, _, name = scoped.rpartition(".")
        if scope in SCOPES and value:
            ranked.setdefault(name, {})[SCOPES.index(scope)] = ast.literal_eval(value)
    return {name: values[max(values)] for name, values in ranked.items()}


@impl
def tox_add_core_config(core_conf, state) -> None:  # noqa: ARG001 (tox's hook signature)
    settings = pip_settings()
    wheels = Path(core_conf["tox_root"]) / ".venv" / "wheels"
    if wheels.is_dir():
        settings["find-links"] = f"{settings.get('find-links', '')} {wheels}"
    for name, (variable, separator) in UV_FOR_PIP.items():
        if name in settings and variable not in os.environ:
            os.environ[variable] = separator.join(settings[name].split())
    # pip takes the best match across every index; uv by default stops at the first index naming a package.
    if settings.keys() & {"extra-index-url", "find-links"}:
        os.environ.setdefault("UV_INDEX_STRATEGY", "unsafe-best-match")
