"""Byte-level BPE tokenizers (GPT-2 style) between GGUF metadata and Hugging Face files.

GGUF -> HF writes tokenizer.json (tokenizers-library format), tokenizer_config.json,
special_tokens_map.json. HF -> GGUF adds the tokenizer.* keys to a GGUFWriter. No transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
from kolm.errors import ArtifactError, UnsupportedModelError

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


def _is_byte_level(p: dict[str, Any], use_regex: bool) -> bool:
    return (
        p.get("type") == "ByteLevel"
        and not p.get("add_prefix_space", False)
        and bool(p.get("use_regex", True)) == use_regex
    )


def detect_pre(tokenizer_json: dict[str, Any]) -> str:
    """The llama.cpp pre-tokenizer name for a tokenizer.json; UnsupportedModelError if none fits."""
    model = tokenizer_json.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or tokenizer_json.get("normalizer"):
        raise UnsupportedModelError(
            "only byte-level (GPT-2 style) BPE tokenizers are supported; this tokenizer.json has "
            f"model {model.get('type')!r}, byte_fallback={bool(model.get('byte_fallback'))}, "
            f"normalizer {(tokenizer_json.get('normalizer') or {}).get('type')!r} "
            "(SentencePiece-style Llama 2 tokenizers are not supported)"
        )
    pt = tokenizer_json.get("pre_tokenizer") or {}
    seq = pt.get("pretokenizers", []) if pt.get("type") == "Sequence" else [pt]
    if len(seq) == 1 and _is_byte_level(seq[0], True):
        return "gpt2"
    if len(seq) == 2 and _is_byte_level(seq[1], True):
        d = seq[0]
        if d.get("type") == "Digits" and d.get("individual_digits"):
            return "smollm"
    if len(seq) == 2 and _is_byte_level(seq[1], False):
        s = seq[0]
        if (
            s.get("type") == "Split"
            and (s.get("pattern") or {}).get("Regex") == _LLAMA3_REGEX
            and s.get("behavior") == "Isolated"
            and not s.get("invert")
        ):
            return "llama-bpe"
    raise UnsupportedModelError(
        f"tokenizer.json pre_tokenizer {json.dumps(pt)[:200]} is not a supported byte-level BPE "
        "pre-tokenizer; supported: GPT-2 ByteLevel, SmolLM (Digits + ByteLevel), Llama 3 (Split + ByteLevel)"
    )


def _field(reader: gguf.GGUFReader, key: str, default: Any = None) -> Any:
    f = reader.get_field(key)
    return default if f is None else f.contents()


def check_gguf_tokenizer(reader: gguf.GGUFReader) -> None:
    """Raise UnsupportedModelError/ArtifactError unless the GGUF holds a convertible tokenizer."""
    model = _field(reader, "tokenizer.ggml.model")
    if model is None:
        raise ArtifactError("the GGUF has no tokenizer (tokenizer.ggml.model is missing)")
    if model != "gpt2":
        raise UnsupportedModelError(
            f"GGUF tokenizer model {model!r} is not supported; only byte-level BPE ('gpt2') converts"
        )
    _pre_tokenizer_for(_field(reader, "tokenizer.ggml.pre", "default"))
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
        if reader.get_field(key) is None:
            raise ArtifactError(f"the GGUF tokenizer is incomplete: {key} is missing")


def write_hf_tokenizer(reader: gguf.GGUFReader, out_dir: Path, model_max_length: int) -> dict[str, int]:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json; return special ids."""
    check_gguf_tokenizer(reader)
    pre = _field(reader, "tokenizer.ggml.pre", "default")
    tokens: list[str] = _field(reader, "tokenizer.ggml.tokens")
    types: list[int] = _field(reader, "tokenizer.ggml.token_type") or [_NORMAL] * len(tokens)
    merges: list[str] = _field(reader, "tokenizer.ggml.merges")
    if len(types) != len(tokens):
        raise ArtifactError(f"the GGUF has {len(tokens)} tokens but {len(types)} token types")
    ids = {name: int(v) for name, key in _SPECIAL_KEYS.items() if (v := _field(reader, key)) is not None}
    ids = {k: v for k, v in ids.items() if 0 <= v < len(tokens)}
    add_bos = bool(_field(reader, "tokenizer.ggml.add_bos_token", False))
    add_eos = bool(_field(reader, "tokenizer.ggml.add_eos_token", False))

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
    if (prefix := _field(reader, "tokenizer.ggml.add_space_prefix")) is not None:
        config["add_prefix_space"] = bool(prefix)
    if (template := _field(reader, "tokenizer.chat_template")) is not None:
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


def _looks_special(token: str) -> bool:
    """llama.cpp's heuristic for added tokens that should be CONTROL even if not marked special."""
    return token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (
        (token.startswith("<|") and token.endswith("|>"))
        or (token.startswith("<｜") and token.endswith("｜>"))
        or (token.startswith("<unused") and token.endswith(">"))
    )


def load_tokenizer_json(hf_dir: Path) -> dict[str, Any]:
    path = hf_dir / "tokenizer.json"
    if not path.is_file():
        raise UnsupportedModelError(
            f"{hf_dir} has no tokenizer.json; only fast (tokenizers-library) byte-level BPE tokenizers convert"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path} is not valid JSON ({e})") from e


def add_gguf_tokenizer(writer: gguf.GGUFWriter, hf_dir: Path, vocab_size: int) -> None:
    """Add tokenizer.ggml.* keys (model, pre, tokens, types, merges, special ids, template)."""
    tj = load_tokenizer_json(hf_dir)
    pre = detect_pre(tj)
    id_to_tok: dict[int, str] = {int(i): t for t, i in tj["model"].get("vocab", {}).items()}
    added = {int(a["id"]): a for a in tj.get("added_tokens", [])}
    for i, a in added.items():
        id_to_tok[i] = a["content"]
    if id_to_tok and max(id_to_tok) >= vocab_size:
        raise UnsupportedModelError(
            f"tokenizer has token id {max(id_to_tok)} but config.json vocab_size is {vocab_size}"
        )
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        tok = id_to_tok.get(i)
        if tok is None:
            tokens.append(f"[PAD{i}]")
            types.append(_UNUSED)
        elif i in added:
            tokens.append(tok)
            types.append(_CONTROL if added[i].get("special") or _looks_special(tok) else _USER_DEFINED)
        else:
            tokens.append(tok)
            types.append(_NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=vocab_size)
    if not special.merges:
        raise UnsupportedModelError(f"{hf_dir / 'tokenizer.json'} has no BPE merges")
    special.add_to_gguf(writer, quiet=True)
    cfg_path = hf_dir / "tokenizer_config.json"
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        if isinstance(cfg.get("add_prefix_space"), bool):
            writer.add_add_space_prefix(cfg["add_prefix_space"])
