"""Fuzzing kolm-onnx's payload reader (`kolm verify`'s first step: the ONNX graph, its metadata_props
and MatMul nodes, `graph.load_graph`) with Hypothesis (kolm_testing.fuzz), on a tiny random-weight
export with its graph damaged every which way.

Property: the payload's facts, or one line of `KolmError`, never another exception.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kolm_testing.fuzz import damaged_payload_test
from kolm_testing.fuzz import tiny_export as make_tiny_export

pytestmark = pytest.mark.usefixtures("own_kolm_home")


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_export(tmp_path_factory.mktemp("tiny"), "onnx", "pixel-8", "int4")


test_a_damaged_payload_is_read_or_refused_in_one_line = damaged_payload_test("onnx", ["model.onnx"])
