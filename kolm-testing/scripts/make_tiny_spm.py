"""Train the tiny SentencePiece tokenizer the family test models carry (`kolm_testing/data/tiny-spm/`).

A Llama-style SentencePiece model (unk 0, <s> 1, </s> 2, byte fallback, so any text encodes) of
TINY_VOCAB pieces trained offline on kolm's own README and docs, saved with the fast
`tokenizer.json` transformers converts it to. Run it again only to change the tokenizer:

    python kolm-testing/scripts/make_tiny_spm.py    # needs sentencepiece, transformers, tokenizers
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import sentencepiece as spm
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "kolm-testing" / "src" / "kolm_testing" / "data" / "tiny-spm"
TINY_VOCAB = 1024
# Gemma's turn markers, and Phi-3's end of text: llama.cpp's vocabulary loader looks that token up
# by name in any model whose name contains "phi3" (llama-vocab.cpp, per-token attributes).
SPECIAL_TOKENS = ["<start_of_turn>", "<end_of_turn>", "<|endoftext|>"]


def corpus() -> str:
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in texts)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus().splitlines()),
        model_writer=model,
        vocab_size=TINY_VOCAB,
        model_type="bpe",
        byte_fallback=True,
        user_defined_symbols=SPECIAL_TOKENS,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        character_coverage=1.0,
        num_threads=1,
        normalization_rule_name="identity",
        minloglevel=2,
    )
    (OUT / "tokenizer.model").write_bytes(model.getvalue())
    (OUT / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer", "legacy": False}))
    AutoTokenizer.from_pretrained(OUT).save_pretrained(OUT)  # adds tokenizer.json, converted from the model
    config = json.loads((OUT / "tokenizer_config.json").read_text(encoding="utf-8"))
    for key in ("is_local", "local_files_only"):  # where it was loaded from, not the tokenizer's
        config.pop(key, None)
    (OUT / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{OUT}: {sorted(p.name for p in OUT.iterdir())}")


if __name__ == "__main__":
    main()
