"""K-score: the mean item score of a model on an eval pack (DESIGN.md section 7).

`choice` items score 1 when the choice with the highest log-likelihood after the prompt is the
answer; `exact` and `contains` items generate greedily (no chat template) and compare normalised
text: `exact` the first non-blank line, `contains` the answer anywhere as whole words. K is in
[0, 1]; points are K x 100. Only the `Session` interface is used, so every backend scores alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from kolm.datamodel import KolmModel
from kolm.errors import UsageError
from kolm.evalpack import EvalItem
from kolm.session import Session

# Stripped from both ends of a normalised string. Signs, currency and percent are kept ("-5" != "5").
_SURROUNDING = " \t\r\n.,;:!?\"'`*_()[]{}<>«»‘’‚‛“”„‟‹›「」『』"
_SPACE = re.compile(r"\s+")


class ItemScore(KolmModel):
    """The outcome of one item: the text the model produced (or the choice it picked) and 0 or 1."""

    id: str
    kind: str
    prompt: str
    output: str
    score: int
    loglikelihoods: list[float] | None = None


class KScore(KolmModel):
    """K over a pack, with every item's outcome."""

    k: float
    points: float
    items: list[ItemScore]
    n: int


def normalize(text: str) -> str:
    """NFKC, lowercase, collapse whitespace, strip surrounding punctuation and quotes."""
    text = _SPACE.sub(" ", unicodedata.normalize("NFKC", text).lower())
    return text.strip(_SURROUNDING)


def first_line(text: str) -> str:
    """The first non-blank line of `text` ("" when there is none)."""
    return next((line for line in text.splitlines() if line.strip()), "")


def contains_words(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` as whole words ("0" is not in "2000", "ate" not in "eaten")."""
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def _score_choice(session: Session, item: EvalItem) -> ItemScore:
    choices = item.choices or []
    lls = [session.loglikelihood(item.prompt, choice) for choice in choices]
    best = max(range(len(choices)), key=lambda i: lls[i])  # ties go to the first listed choice
    return ItemScore(id=item.id, kind=item.kind, prompt=item.prompt, output=choices[best],
                     score=int(choices[best] == item.answer), loglikelihoods=lls)


def _score_generated(session: Session, item: EvalItem, max_tokens: int) -> ItemScore:
    output = "".join(session.generate(item.prompt, max_tokens=max_tokens, stream=False, chat=False))
    answer = normalize(item.answer)
    if item.kind == "exact":
        ok = normalize(first_line(output)) == answer
    else:
        ok = bool(answer) and contains_words(normalize(output), answer)
    return ItemScore(id=item.id, kind=item.kind, prompt=item.prompt, output=output, score=int(ok))


def score(
    session: Session,
    items: list[EvalItem],
    max_tokens: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> KScore:
    """Score `items` in order on `session`; `progress(done, total)` is called after each item.
    Deterministic for a deterministic session (greedy generation, fixed choice order)."""
    if not items:
        raise UsageError("no eval items to score")
    results: list[ItemScore] = []
    for done, item in enumerate(items, start=1):
        if item.kind == "choice":
            results.append(_score_choice(session, item))
        else:
            results.append(_score_generated(session, item, max_tokens))
        if progress is not None:
            progress(done, len(items))
    k = sum(r.score for r in results) / len(results)
    return KScore(k=k, points=round(k * 100, 2), items=results, n=len(results))
