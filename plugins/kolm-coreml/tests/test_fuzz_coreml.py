"""Fuzzing kolm-coreml's payload reader (`kolm verify`'s first step: the package's Manifest.json,
model spec and weight.bin, `package.load_spec` and `package.weights`) with Hypothesis
(kolm_testing.fuzz), on a tiny random-weight export with those files damaged every which way.

Property: the payload's facts, or one line of `KolmError`, never another exception.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kolm_testing.fuzz import EXAMPLES, damaged_payload_test
from kolm_testing.fuzz import tiny_export as make_tiny_export

pytestmark = pytest.mark.usefixtures("own_kolm_home")


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_export(tmp_path_factory.mktemp("tiny"), "coreml", "iphone-15-pro", "int4")


test_a_damaged_payload_is_read_or_refused_in_one_line = damaged_payload_test(
    "coreml",
    [
        "model.mlpackage/Manifest.json",
        "model.mlpackage/Data/com.apple.CoreML/model.mlmodel",
        "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin",
    ],
    examples=EXAMPLES // 10,  # each input loads a MIL program with coremltools (0.2-0.36 s each in CI runs here)
)
