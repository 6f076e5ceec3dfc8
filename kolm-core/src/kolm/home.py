"""Where kolm keeps its files: measurement logs (`kolm.history`) and plugins' caches."""

from __future__ import annotations

import os
from pathlib import Path


def kolm_home() -> Path:
    """$KOLM_HOME, default ~/.local/share/kolm."""
    return Path(os.environ.get("KOLM_HOME") or Path.home() / ".local" / "share" / "kolm")
