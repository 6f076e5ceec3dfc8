#!/usr/bin/env python3
"""Forecast size vs the file the export writes, per backend and tier, on SmolLM2-135M-Instruct.

.venv/bin/python benchmarks/forecast_accuracy.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import smollm2_artifact  # noqa: E402


def main() -> None:
    from kolm.export import export_artifact
    from kolm.forecast import forecast
    from kolm.modelspec import resolve_model
    from kolm.plugins import registry
    from kolm.quant import TIERS

    reg = registry()
    artifact = smollm2_artifact()
    spec = resolve_model(str(artifact))
    base = resolve_model("SmolLM2-135M-Instruct")
    device = reg.devices().find("raspberry-pi-5")
    print(
        f"{'backend':<8}{'tier':<6}{'forecast (.kolm) B':>20}{'forecast (name) B':>19}{'actual B':>14}"
        f"{'error':>10}{'by name':>10}"
    )
    with tempfile.TemporaryDirectory(dir=artifact.parent) as work:
        for tier in TIERS:
            planned = forecast(reg, spec, device, tier)
            by_name = forecast(reg, base, device, tier).size_bytes
            record = export_artifact(
                reg,
                artifact,
                device,
                tier,
                "gguf",
                Path(work) / tier,
                planned.size_bytes,
                planned.read_per_token_bytes,
                score=False,
            )
            actual = record.size_check.actual_bytes
            print(
                f"{'gguf':<8}{tier:<6}{planned.size_bytes:>20,}{by_name:>19,}{actual:>14,}"
                f"{record.size_check.error_percent:>+9.3f}%{100 * (by_name - actual) / actual:>+9.3f}%"
            )
    print(
        "\n'.kolm': forecast from the artifact (tokenizer counted); 'name': from the base name alone "
        "(tokenizer estimated). Other backends report nominal sizes until their export lands."
    )


if __name__ == "__main__":
    main()
