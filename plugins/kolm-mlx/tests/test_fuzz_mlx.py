"""Fuzzing kolm-mlx's payload reader (`kolm verify`'s first step: the safetensors header,
`kolm.safetensors_header.read_header`, and config.json) with Hypothesis (kolm_testing.fuzz), on a tiny
random-weight export with those files damaged every which way.

Property: the payload's facts, or one line of `KolmError`, never another exception.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kolm_testing.fuzz import damaged_payload_test, read_damaged_payload
from kolm_testing.fuzz import tiny_export as make_tiny_export

pytestmark = pytest.mark.usefixtures("own_kolm_home")


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_export(tmp_path_factory.mktemp("tiny"), "mlx", "m3-pro", "int4")


test_a_damaged_payload_is_read_or_refused_in_one_line = damaged_payload_test(
    "mlx", ["model.safetensors", "config.json"]
)


@pytest.mark.parametrize("config", [b"[]", b'{"quantization": 5}', b'{"quantization": "4bit"}'])
def test_a_config_of_the_wrong_shape_is_refused_in_one_line(tiny_export, tmp_path, config):
    """JSON that parses but is not an mlx-lm config: rare under byte flips, so named here."""
    assert read_damaged_payload("mlx", tiny_export, tmp_path / "damaged", {"config.json": config}) is None


def test_a_quantization_it_does_not_know_reads_as_no_tier(tiny_export, tmp_path):
    """Read, not refused: check 4 of `kolm verify` then fails on the tier, naming what it found."""
    damaged = {"config.json": b'{"quantization": {"group_size": "x", "bits": null}}'}
    facts = read_damaged_payload("mlx", tiny_export, tmp_path / "damaged", damaged)
    assert facts is not None and facts.tier is None and "group_size" in facts.types
