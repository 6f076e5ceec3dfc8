"""Quant tiers: kolm's four names, the spellings users type for them, and typical quality loss.

Each backend spells a tier its own way (`Backend.tiers`); this module knows only the tier names.
"""

from __future__ import annotations

from typing import Literal

from kolm.errors import UsageError

Tier = Literal["fp16", "int8", "int4", "int3"]
TIERS: tuple[Tier, ...] = ("fp16", "int8", "int4", "int3")

_ALIASES = {
    "fp16": "fp16",
    "f16": "fp16",
    "float16": "fp16",
    "bf16": "fp16",
    "int8": "int8",
    "q8": "int8",
    "q8_0": "int8",
    "8bit": "int8",
    "int4": "int4",
    "q4": "int4",
    "q4_k_m": "int4",
    "4bit": "int4",
    "int3": "int3",
    "q3": "int3",
    "q3_k_s": "int3",
    "3bit": "int3",
}

# Typical K-score drop vs fp16, in points (K x 100), used until a measured K replaces it.
# kolm's planning deltas (docs/architecture.md, "Forecast"), not measurements.
TYPICAL_K_LOSS_POINTS = {"fp16": 0.0, "int8": 0.5, "int4": 2.0, "int3": 5.0}
# `kolm export` fails when K drops more than this many points below fp16 (unless --allow-drop).
DEFAULT_MAX_K_DROP = 5.0


def parse_tier(text: str) -> str:
    """Map a user's spelling (`int4`, `Q4_K_M`, `q4`) to a tier name."""
    tier = _ALIASES.get(text.strip().lower().replace("-", "_"))
    if tier is None:
        raise UsageError(f"unknown quant tier {text!r}; use one of: {', '.join(TIERS)}")
    return tier
