"""The Session helpers every backend shares: where a continuation starts, log-softmax, fidelity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kolm.api import Session
from kolm.errors import BackendError
from kolm.logprobs import continuation_start, log_softmax


@pytest.mark.parametrize(
    ("prefix", "full", "start"),
    [
        ([1, 2, 3], [1, 2, 3, 4, 5], 3),  # the context's tokens, then the continuation's
        ([1, 2, 3], [1, 2, 9, 5], 2),  # the tokenizer merged the context's last token into the continuation
        ([1, 2], [1, 2], 1),  # at least one token is left to score
        ([], [7, 8], 0),
    ],
)
def test_continuation_start(prefix, full, start):
    assert continuation_start(prefix, full) == start


def test_log_softmax_rows_are_normalised():
    rows = log_softmax([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]])
    assert np.allclose(np.exp(rows).sum(axis=1), 1.0)
    assert math.isclose(rows[1, 0], math.log(0.5))


class Fixed(Session):
    """Next-token distributions given directly (positions x vocab), one per text."""

    def __init__(self, logits: list[list[float]]) -> None:
        self.logits = logits

    def generate(self, prompt, max_tokens=128, stream=True, chat=False):
        yield ""

    def loglikelihood(self, context, continuation):
        return 0.0

    def position_logprobs(self, text):
        return log_softmax(self.logits)


def test_fidelity_counts_top1_agreement_and_kl():
    reference = Fixed([[0.0, 5.0], [5.0, 0.0]])
    same = Fixed([[0.0, 5.0], [5.0, 0.0]]).fidelity(reference, ["a"])
    assert same.top1_agreement == 1.0 and same.mean_kl == pytest.approx(0.0) and same.positions == 2
    flipped = Fixed([[0.0, 5.0], [0.0, 5.0]]).fidelity(reference, ["a"])
    assert flipped.top1_agreement == 0.5 and flipped.mean_kl > 1.0


def test_fidelity_needs_a_reference_of_the_same_backend():
    class Other(Fixed):
        pass

    with pytest.raises(BackendError, match="can only be compared with a reference of its own backend"):
        Fixed([[0.0]]).fidelity(Other([[0.0]]), ["a"])
