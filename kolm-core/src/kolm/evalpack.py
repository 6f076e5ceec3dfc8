"""Eval packs: JSONL items a K-score is measured on (docs/architecture.md, "K-score and verify")."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, ValidationError, model_validator

from kolm.datamodel import KolmModel
from kolm.errors import UsageError

DEFAULT_EVAL_PACK = Path(__file__).parent / "evalpacks" / "default.jsonl"


def default_eval_pack() -> Path:
    """The pack `kolm pack` scores without `--eval`: KOLM_EVAL_PACK (a site's own pack, or a short
    one for the docs' tests), else kolm's default."""
    return Path(os.environ["KOLM_EVAL_PACK"]) if os.environ.get("KOLM_EVAL_PACK") else DEFAULT_EVAL_PACK


def read_pack_text(path: Path) -> str:
    """An eval pack file's text, as `kolm pack` stores it in the artifact (line endings normalised)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read eval pack {path}: {exc.strerror}") from exc


def pack_sha256(path: Path) -> str:
    """The SHA-256 an RS-1 manifest records for the eval pack at `path` (of its stored text)."""
    return hashlib.sha256(read_pack_text(path).encode()).hexdigest()


@cache
def default_pack_sha256(path: Path) -> str:
    """`pack_sha256` of the default pack, once per process: every forecast of a pick asks for it."""
    return pack_sha256(path)


class EvalItem(KolmModel):
    """One eval item. `choice` items score by log-likelihood argmax over `choices`; `exact` and
    `contains` by greedy generation compared with `answer`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    prompt: str
    kind: Literal["choice", "exact", "contains"]
    choices: list[str] | None = None
    answer: str

    @model_validator(mode="after")
    def _choices_match_kind(self) -> EvalItem:
        if self.kind == "choice" and (not self.choices or self.answer not in self.choices):
            raise ValueError("a choice item needs `choices` containing `answer`")
        if self.kind != "choice" and self.choices is not None:
            raise ValueError(f"a {self.kind} item takes no `choices`")
        return self


def parse_eval_pack(text: str, origin: str) -> list[EvalItem]:
    """Parse and validate JSONL; every bad line is reported with its number."""
    items: list[EvalItem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(EvalItem.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else exc.msg
            raise UsageError(f"{origin} line {number}: not a valid eval item ({reason})") from exc
    if not items:
        raise UsageError(f"{origin} holds no eval items")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise UsageError(f"{origin}: duplicate item ids")
    return items


def load_eval_pack(path: Path) -> list[EvalItem]:
    return parse_eval_pack(read_pack_text(path), str(path))


CALIBRATION_PROMPTS = 32
"""How many of the default pack's 131 prompts quantizers calibrate on (AWQ's search runs once per
prompt and layer)."""


def calibration_prompts() -> list[str]:
    """The prompts kolm's quantizing backends calibrate on: the first CALIBRATION_PROMPTS of the
    default eval pack (no dataset from a hub)."""
    return [item.prompt for item in load_eval_pack(DEFAULT_EVAL_PACK)[:CALIBRATION_PROMPTS]]
