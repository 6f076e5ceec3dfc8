"""How many models kolm's caches under `$KOLM_HOME/cache/` keep: the fp16 references
(`kolm.reference`), the gguf backend's F16 GGUF, the Core ML float16 package. Each keeps the models
used last, `KOLM_CACHE_MODELS` of them (default 1: a 7B model's F16 GGUF alone is ~15 GB), and
removes the least recently used first, so exporting to several targets converts a model once, and
alternating between a few models (a test suite, `kolm matrix`) need not convert each again."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from kolm.errors import UsageError

CACHE_MODELS = "KOLM_CACHE_MODELS"


def kept_models() -> int:
    """KOLM_CACHE_MODELS, a whole number of models of 1 or more (1 when unset)."""
    value = os.environ.get(CACHE_MODELS, "1")
    try:
        kept = int(value)
    except ValueError:
        kept = 0
    if kept < 1:
        raise UsageError(f"{CACHE_MODELS}={value!r}: expected how many models the caches keep, 1 or more")
    return kept


def used(entry: Path) -> Path:
    """Mark a cache entry (file or folder) as just used: the last `make_room` removes. Returns it."""
    os.utime(entry)
    return entry


def make_room(entries: Iterable[Path]) -> None:
    """Remove the least recently used of one cache's `entries` until one more is within kept_models()."""

    def last_used(entry: Path) -> float:
        try:
            return entry.stat().st_mtime
        except FileNotFoundError:  # another process removed it
            return float("-inf")

    for old in sorted(entries, key=last_used, reverse=True)[kept_models() - 1 :]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
