"""The throughput forecast against published measurements (tests/data/published_runs.json, each
with its URL and quote): per device kind x backend, the median error of the forecast's midpoint
must stay within kolm.throughput.FORECAST_ERROR_CEILING wherever a class has MIN_RUNS runs.
`benchmarks/forecast_accuracy.py --speed` prints the table."""

from __future__ import annotations

from pathlib import Path

import pytest
from kolm.throughput import FORECAST_ERROR_CEILING
from kolm_testing.accuracy import errors_by_class, load_runs, replay

RUNS = Path(__file__).parent / "data" / "published_runs.json"
# A class with fewer runs than this is reported, not gated: one run is an anecdote.
MIN_RUNS = 3


@pytest.fixture(scope="module")
def replayed():
    from kolm.plugins import registry

    done, skipped = replay(registry(), load_runs(RUNS))
    return done, skipped


def test_every_run_cites_its_source_and_quotes_its_number():
    for run in load_runs(RUNS):
        assert run["source"].startswith("https://") and run["tok_s"] > 0, run
        assert run["quote"].strip(), run


def test_most_published_runs_replay_on_a_kolm_device_row(replayed):
    done, skipped = replayed
    assert len(done) >= 2 * len(skipped), skipped


def test_the_median_error_per_device_kind_and_backend_is_within_the_ceiling(replayed):
    done, _ = replayed
    gated = [c for c in errors_by_class(done) if c.runs >= MIN_RUNS]
    assert gated, "no class has enough published runs to gate"
    over = [
        f"{c.kind} x {c.backend}: median {c.median:.0%} over {c.runs} runs"
        for c in gated
        if c.median > FORECAST_ERROR_CEILING
    ]
    assert not over, over
