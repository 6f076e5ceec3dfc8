"""Byte-level BPE tokenizers (GPT-2 style) from GGUF metadata to Hugging Face files, for
`kolm pack --from-gguf`: tokenizer.json (tokenizers-library format), tokenizer_config.json,
special_tokens_map.json. No transformers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
from kolm.errors import ArtifactError, UnsupportedModelError

from kolm_gguf.gguf_file import Header

# llama.cpp pre-tokenizer names (tokenizer.ggml.pre) this module can express in tokenizer.json.
_LLAMA3_REGEX = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
_LLAMA3_PRE = ("llama-bpe", "llama3", "llama-v3")
SUPPORTED_PRE = ("smollm", "gpt2", *_LLAMA3_PRE)

_NORMAL, _CONTROL, _USER_DEFINED, _UNUSED = (
    int(gguf.TokenType.NORMAL),
    int(gguf.TokenType.CONTROL),
    int(gguf.TokenType.USER_DEFINED),
    int(gguf.TokenType.UNUSED),
)
# GGUF special-token id keys -> HF names (tokenizer_config "<name>_token").
_SPECIAL_KEYS = {
    "bos": "tokenizer.ggml.bos_token_id",
    "eos": "tokenizer.ggml.eos_token_id",
    "unk": "tokenizer.ggml.unknown_token_id",
    "pad": "tokenizer.ggml.padding_token_id",
    "sep": "tokenizer.ggml.seperator_token_id",
    "cls": "tokenizer.ggml.cls_token_id",
    "mask": "tokenizer.ggml.mask_token_id",
}


def _byte_level(use_regex: bool) -> dict[str, Any]:
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}


def _pre_tokenizer_for(pre: str) -> dict[str, Any]:
    if pre == "gpt2":
        return _byte_level(True)
    if pre == "smollm":
        return {
            "type": "Sequence",
            "pretokenizers": [{"type": "Digits", "individual_digits": True}, _byte_level(True)],
        }
    if pre in _LLAMA3_PRE:
        split = {
            "type": "Split",
            "pattern": {"Regex": _LLAMA3_REGEX},
            "behavior": "Isolated",
            "invert": False,
        }
        return {"type": "Sequence", "pretokenizers": [split, _byte_level(False)]}
    raise UnsupportedModelError(f"GGUF pre-tokenizer {pre!r} is not supported; supported: {', '.join(SUPPORTED_PRE)}")


def metadata(header: Header, key: str, default: Any = None) -> Any:
    """The value of metadata `key` (a list for an array), `default` when absent; ArtifactError for
    a string, or a string in an array, that is not UTF-8 (`read_header` keeps those as bytes)."""
    value = header.get(key, default)
    if isinstance(value, bytes) or (isinstance(value, list) and any(isinstance(v, bytes) for v in value)):
        raise ArtifactError(f"GGUF metadata key {key} holds a string that is not UTF-8")
    return value


def check_gguf_tokenizer(header: Header) -> None:
    """Raise UnsupportedModelError/ArtifactError unless the GGUF holds a convertible tokenizer."""
    model = metadata(header, "tokenizer.ggml.model")
    if model is None:
        raise ArtifactError("the GGUF has no tokenizer (tokenizer.ggml.model is missing)")
    if model != "gpt2":
        raise UnsupportedModelError(
            f"GGUF tokenizer model {model!r} is not supported; only byte-level BPE ('gpt2') converts"
        )
    _pre_tokenizer_for(metadata(header, "tokenizer.ggml.pre", "default"))
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
        value = metadata(header, key)
        if value is None:
            raise ArtifactError(f"the GGUF tokenizer is incomplete: {key} is missing")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ArtifactError(f"the GGUF tokenizer is corrupt: {key} is not an array of strings")


def write_hf_tokenizer(header: Header, out_dir: Path, model_max_length: int) -> dict[str, int]:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json; return special ids."""
    check_gguf_tokenizer(header)
    pre = metadata(header, "tokenizer.ggml.pre", "default")
    tokens: list[str] = metadata(header, "tokenizer.ggml.tokens")
    types: list[int] = metadata(header, "tokenizer.ggml.token_type") or [_NORMAL] * len(tokens)
    merges: list[str] = metadata(header, "tokenizer.ggml.merges")
    if len(types) != len(tokens):
        raise ArtifactError(f"the GGUF has {len(tokens)} tokens but {len(types)} token types")
    ids = {name: int(v) for name, key in _SPECIAL_KEYS.items() if (v := metadata(header, key)) is not None}
    ids = {k: v for k, v in ids.items() if 0 <= v < len(tokens)}
    add_bos = bool(metadata(header, "tokenizer.ggml.add_bos_token", False))
    add_eos = bool(metadata(header, "tokenizer.ggml.add_eos_token", False))

    vocab: dict[str, int] = {}
    added: list[dict[str, Any]] = []
    for i, (tok, typ) in enumerate(zip(tokens, types, strict=True)):
        vocab.setdefault(tok, i)
        if typ in (_CONTROL, _USER_DEFINED) or (typ != _NORMAL and i in ids.values()):
            added.append(
                {
                    "id": i,
                    "content": tok,
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "special": typ != _USER_DEFINED,
                }
            )

    post: dict[str, Any] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    if (add_bos and "bos" in ids) or (add_eos and "eos" in ids):
        post = {"type": "Sequence", "processors": [post, _template(tokens, ids, add_bos, add_eos)]}
    tokenizer_json = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": _pre_tokenizer_for(pre),
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": pre in _LLAMA3_PRE,
            "vocab": vocab,
            "merges": merges,
        },
    }
    dump_json(out_dir / "tokenizer.json", tokenizer_json)

    specials = {f"{k}_token": tokens[v] for k, v in ids.items()}
    config: dict[str, Any] = {
        "add_bos_token": add_bos,
        "add_eos_token": add_eos,
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
        **specials,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(model_max_length),
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    if (prefix := metadata(header, "tokenizer.ggml.add_space_prefix")) is not None:
        config["add_prefix_space"] = bool(prefix)
    if (template := metadata(header, "tokenizer.chat_template")) is not None:
        config["chat_template"] = template
    dump_json(out_dir / "tokenizer_config.json", config)
    dump_json(
        out_dir / "special_tokens_map.json",
        {
            k: {"content": v, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
            for k, v in specials.items()
        },
    )
    return ids


def _template(tokens: list[str], ids: dict[str, int], add_bos: bool, add_eos: bool) -> dict[str, Any]:
    """TemplateProcessing that adds BOS/EOS the way llama.cpp's add_bos/add_eos flags do."""
    pre = [tokens[ids["bos"]]] if add_bos and "bos" in ids else []
    post = [tokens[ids["eos"]]] if add_eos and "eos" in ids else []

    def seq(name: str, type_id: int) -> list[dict[str, Any]]:
        return (
            [{"SpecialToken": {"id": t, "type_id": type_id}} for t in pre]
            + [{"Sequence": {"id": name, "type_id": type_id}}]
            + [{"SpecialToken": {"id": t, "type_id": type_id}} for t in post]
        )

    special = {t: {"id": t, "ids": [tokens.index(t)], "tokens": [t]} for t in pre + post}
    return {
        "type": "TemplateProcessing",
        "single": seq("A", 0),
        "pair": seq("A", 0) + seq("B", 1),
        "special_tokens": special,
    }


def dump_json(path: Path, obj: Any) -> None:
    """Write obj as indented UTF-8 JSON."""
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
