"""Log-probability helpers every backend's `Session` shares (scoring, fidelity)."""

from __future__ import annotations


def log_softmax(logits):
    """Row-wise log-softmax of a (positions x vocab) array, in float64."""
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    peak = logits.max(axis=-1, keepdims=True)
    return logits - peak - np.log(np.exp(logits - peak).sum(axis=-1, keepdims=True))


def continuation_start(prefix: list[int], full: list[int]) -> int:
    """Where the continuation's tokens begin in `full` (the tokens of context + continuation), given
    `prefix` (the context's tokens): after their common prefix, leaving at least one token to score
    (a tokenizer may merge the context's last token with the continuation's first)."""
    start = 0
    while start < min(len(prefix), len(full) - 1) and prefix[start] == full[start]:
        start += 1
    return start
