"""K-score: each item kind, normalisation, determinism, and the shipped default eval pack."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from importlib.resources import files

import pytest
from kolm.api import Session
from kolm.errors import UsageError
from kolm.evalpack import EvalItem, parse_eval_pack
from kolm.kscore import GENERATE_BATCH, KScore, normalize, score_pack


class ScriptedSession(Session):
    """Answers from scripts: `outputs[prompt]` is the generated text (yielded in pieces),
    `lls[(prompt, continuation)]` the log-likelihood. Records every call."""

    def __init__(self, outputs: dict[str, str] | None = None, lls: dict[tuple[str, str], float] | None = None):
        self.outputs, self.lls, self.calls = outputs or {}, lls or {}, []

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        self.calls.append(("generate", prompt, max_tokens, chat))
        text = self.outputs.get(prompt, "")
        for i in range(0, len(text), 3):
            yield text[i : i + 3]

    def loglikelihood(self, context: str, continuation: str) -> float:
        self.calls.append(("loglikelihood", context, continuation))
        return self.lls[(context, continuation)]


def item(id: str, kind: str, answer: str, prompt: str | None = None, choices: list[str] | None = None) -> EvalItem:
    return EvalItem(id=id, prompt=prompt or f"prompt {id}", kind=kind, answer=answer, choices=choices)


def test_choice_scores_the_loglikelihood_argmax():
    items = [
        item("right", "choice", " 4", choices=[" 3", " 4", " 5"]),
        item("wrong", "choice", " Paris", choices=[" Paris", " Lyon"]),
    ]
    lls = {
        ("prompt right", " 3"): -5.0,
        ("prompt right", " 4"): -1.5,
        ("prompt right", " 5"): -3.0,
        ("prompt wrong", " Paris"): -7.0,
        ("prompt wrong", " Lyon"): -2.0,
    }
    result = score_pack(ScriptedSession(lls=lls), items)
    assert [r.score for r in result.items] == [1, 0]
    assert result.items[0].output == " 4" and result.items[0].loglikelihoods == [-5.0, -1.5, -3.0]
    assert result.items[1].output == " Lyon"
    assert result.k == 0.5 and result.points == 50.0 and result.n == 2


def test_choice_tie_goes_to_the_first_listed_choice():
    items = [item("tie", "choice", " b", choices=[" a", " b"])]
    result = score_pack(ScriptedSession(lls={("prompt tie", " a"): -1.0, ("prompt tie", " b"): -1.0}), items)
    assert result.items[0].output == " a" and result.k == 0.0


def test_exact_compares_the_first_line_only():
    items = [item("a", "exact", "4"), item("b", "exact", "4"), item("c", "exact", "4")]
    outputs = {"prompt a": " 4\n\nQuestion: what is 5 + 5?", "prompt b": "\n  4.\n", "prompt c": " 14\n4"}
    session = ScriptedSession(outputs=outputs)
    result = score_pack(session, items, max_tokens=7)
    assert [r.score for r in result.items] == [1, 1, 0]
    assert result.items[0].output == outputs["prompt a"]
    assert all(call[2] == 7 and call[3] is False for call in session.calls)  # max_tokens passed, no chat template


def test_contains_finds_the_answer_anywhere_as_whole_words():
    items = [
        item("a", "contains", "Paris"),
        item("b", "contains", "Paris"),
        item("c", "contains", "New York"),
        item("d", "contains", "0"),
        item("e", "contains", "ate"),
    ]
    outputs = {
        "prompt a": " The capital is PARIS, of course.",
        "prompt b": " Lyon.",
        "prompt c": " It is in new\n  york city.",
        "prompt d": " 2000 degrees",
        "prompt e": " eaten",
    }
    assert [r.score for r in score_pack(ScriptedSession(outputs=outputs), items).items] == [1, 0, 1, 0, 0]


def test_normalisation():
    assert normalize("  «Ｐａｒｉｓ»!  ") == "paris"  # NFKC folds full-width letters
    assert normalize('"Hello,\n\tWorld."') == "hello, world"
    assert normalize("**H2O**") == "h2o"
    assert normalize("-5") == "-5" and normalize("$3") == "$3"  # signs and currency are kept
    assert normalize("ﬁne") == "fine"


def test_empty_output_scores_zero():
    items = [item("e", "exact", "4"), item("c", "contains", "Paris"), item("blank", "contains", "  ")]
    result = score_pack(ScriptedSession(outputs={"prompt blank": "anything"}), items)
    assert [r.score for r in result.items] == [0, 0, 0]
    assert result.items[0].output == "" and result.k == 0.0


def test_deterministic_and_reports_progress():
    items = [
        item("g", "contains", "blue"),
        item("x", "exact", "7"),
        item("c", "choice", " yes", choices=[" yes", " no"]),
    ]
    session = ScriptedSession(
        outputs={"prompt g": " Blue.", "prompt x": " 8"}, lls={("prompt c", " yes"): -0.1, ("prompt c", " no"): -2.3}
    )
    seen: list[tuple[int, int]] = []
    first = score_pack(session, items, progress=lambda done, total: seen.append((done, total)))
    second = score_pack(session, items)
    assert isinstance(first, KScore) and first == second
    assert first.k == pytest.approx(2 / 3) and first.points == pytest.approx(66.67)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert [r.id for r in first.items] == ["g", "x", "c"]


class BatchingSession(ScriptedSession):
    """A ScriptedSession that also records each batch `score_pack` asks of `generate_all`."""

    def generate_all(self, prompts: list[str], max_tokens: int) -> list[str]:
        self.calls.append(("generate_all", prompts))
        return super().generate_all(prompts, max_tokens)


def test_generated_items_are_asked_in_order_in_batches_with_the_same_scores():
    items = [item(f"g{i}", "contains", "blue") for i in range(GENERATE_BATCH + 3)]
    items.insert(5, item("c", "choice", " yes", choices=[" yes", " no"]))
    outputs = {f"prompt g{i}": " blue" if i % 2 else " red" for i in range(GENERATE_BATCH + 3)}
    lls = {("prompt c", " yes"): -0.1, ("prompt c", " no"): -2.3}
    session, seen = BatchingSession(outputs, lls), []
    result = score_pack(session, items, progress=lambda done, total: seen.append(done))
    batches = [call[1] for call in session.calls if call[0] == "generate_all"]
    generated = [i.prompt for i in items if i.kind != "choice"]
    assert batches == [generated[:GENERATE_BATCH], generated[GENERATE_BATCH:]]
    assert [r.id for r in result.items] == [i.id for i in items] and seen == list(range(1, len(items) + 1))
    one_at_a_time = [score_pack(ScriptedSession(outputs, lls), [i]).items[0] for i in items]
    assert result.items == one_at_a_time


def test_no_items_is_a_usage_error():
    with pytest.raises(UsageError):
        score_pack(ScriptedSession(), [])


def test_default_pack_ships_and_parses():
    resource = files("kolm") / "evalpacks" / "default.jsonl"
    items = parse_eval_pack(resource.read_text(encoding="utf-8"), "default.jsonl")
    assert len({i.id for i in items}) == len(items) >= 110
    kinds = Counter(i.kind for i in items)
    assert set(kinds) == {"choice", "exact", "contains"}
    assert 0.35 <= kinds["choice"] / len(items) <= 0.65
    for i in items:
        if i.kind == "choice":
            assert len(set(i.choices)) == len(i.choices) >= 2  # no duplicate (trivial) choices
        elif i.kind == "contains":  # echoing the prompt must not pass
            assert normalize(i.answer) and normalize(i.answer) not in normalize(i.prompt), i.id
