#!/usr/bin/env python3
"""Forecast accuracy. Size: the forecast vs the file the export writes, per tier, on
SmolLM2-135M-Instruct. Speed (`--speed`): the decode forecast vs published measurements
(tests/data/published_runs.json), per device kind x backend: median and 90th-percentile error of the
forecast's midpoint, and the share of runs inside the band it claims.

.venv/bin/python benchmarks/forecast_accuracy.py [--speed]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import smollm2_artifact  # noqa: E402


def speed() -> None:
    from kolm.plugins import registry
    from kolm_testing.accuracy import errors_by_class, load_runs, replay

    runs = load_runs(Path(__file__).parents[1] / "tests" / "data" / "published_runs.json")
    done, skipped = replay(registry(), runs)
    print(f"{len(done)} of {len(runs)} published runs replayed ({len(skipped)} without a kolm row or tier)\n")
    print(f"{'device kind':<13}{'backend':<9}{'runs':>5}{'in-sample':>10}{'median':>8}{'p90':>7}{'in band':>9}")
    for c in errors_by_class(done):
        print(
            f"{c.kind:<13}{c.backend:<9}{c.runs:>5}{c.in_sample:>10}{c.median:>8.0%}{c.p90:>7.0%}{c.within_band:>9.0%}"
        )
    print("\nerror: |forecast midpoint / measured - 1|; in-sample: runs from a source the calibration was derived from")


def main() -> None:
    if "--speed" in sys.argv[1:]:
        return speed()
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
