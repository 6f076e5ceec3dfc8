"""Opening a Core ML export. Core ML prediction exists only on Apple's OSes, so:

- on macOS 15+, `CoreMLSession` runs the package through Core ML itself (coremltools' `predict`
  with the model's KV-cache state): `kolm run`, serving, K and fidelity;
- elsewhere, `WeightsSession` measures K and fidelity on the package's own weights, decompressed by
  coremltools from the package's constexpr ops, in PyTorch (float32) through transformers' model of
  the exported config: the same weights Core ML would read, computed by another runtime, and its
  `runtime` says so. It does not chat or serve: `kolm run` there is one line naming macOS.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from kolm.api import Session
from kolm.errors import ArtifactError, ToolchainMissingError, UnsupportedModelError, UsageError
from kolm.logprobs import continuation_start, log_softmax

from kolm_coreml.convert import CAUSAL_MASK, INPUT_IDS, LOGITS
from kolm_coreml.export import require_toolchain
from kolm_coreml.package import PACKAGE, dense_weights, weights
from kolm_coreml.support import FOLDED_NORMS

NEEDS_MACOS = (
    "running a Core ML package needs Core ML: macOS 15 or later on Apple Silicon, or the app on an "
    "iOS 18 device (Swift sample: kolm-coreml's swift/); on this {os} machine kolm only scores K on its weights"
)
# MIL names a weight after the traced module path (`model.model.layers.0.mlp.up_proj.weight` ->
# `model_model_layers_0_mlp_up_proj_weight`) plus what coremltools did to it.
_DONE_TO_IT = re.compile(r"(_promoted)?(_to_fp16)?(_quantized|_palettized)?$")  # then ":bias" for a bias


def traced_name(name: str) -> str:
    """A MIL weight name less what coremltools appended (`..._weight_to_fp16_quantized` ->
    `..._weight`), keeping a `:bias` suffix."""
    stem, colon, rest = name.partition(":")
    return _DONE_TO_IT.sub("", stem) + colon + rest


def on_apple() -> bool:
    return platform.system() == "Darwin"


def needs_macos() -> ToolchainMissingError:
    return ToolchainMissingError(NEEDS_MACOS.format(os=platform.system()))


class _Tokens:
    """The shipped tokenizer (transformers' AutoTokenizer over the files beside the package)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.folder))

    @cached_property
    def config(self) -> dict:
        return json.loads((self.folder / "config.json").read_text(encoding="utf-8"))

    def encode(self, text: str, special: bool = True) -> list[int]:
        """Token ids of `text`, with the tokenizer's special tokens (BOS) unless `special` is False
        (text a chat template already made)."""
        return list(self.tokenizer.encode(text, add_special_tokens=special))

    def decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    @cached_property
    def stop_ids(self) -> frozenset[int]:
        """The end-of-sequence ids of the config and the tokenizer (checked after every token)."""
        ids = self.config.get("eos_token_id")
        ids = ids if isinstance(ids, list) else [ids]
        return frozenset(i for i in [*ids, self.tokenizer.eos_token_id] if i is not None)


class _Scoring(Session):
    """K and fidelity from `logits(tokens)` (positions x vocab) and `greedy(tokens, n)`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.text = _Tokens(folder)

    def logits(self, tokens: list[int]):
        raise NotImplementedError

    def greedy(self, tokens: list[int], max_tokens: int) -> Iterator[int]:
        raise NotImplementedError

    def position_logprobs(self, text: str):
        return log_softmax(self.logits(self.text.encode(text)))

    def loglikelihood(self, context: str, continuation: str) -> float:
        prefix, full = self.text.encode(context), self.text.encode(context + continuation)
        shared = continuation_start(prefix, full)
        rows = log_softmax(self.logits(full))
        return float(sum(rows[i - 1, full[i]] for i in range(max(shared, 1), len(full))))

    def generate_all(self, prompts: list[str], max_tokens: int) -> list[str]:
        return [self.text.decode(list(self.greedy(self.text.encode(p), max_tokens))) for p in prompts]


class WeightsSession(_Scoring):
    """K and fidelity in PyTorch on the weights coremltools decompresses from the package (no Core ML)."""

    @property
    def runtime(self) -> str:
        from importlib.metadata import version

        return (
            f"PyTorch {version('torch')} float32 (transformers {version('transformers')}) on the weights "
            f"coremltools {version('coremltools')} decompresses from {PACKAGE}; Core ML prediction needs macOS"
        )

    @cached_property
    def model(self):
        require_toolchain("coremltools", "torch", "transformers")
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM
        from transformers.initialization import no_init_weights

        dense = {traced_name(name): value for name, value in dense_weights(weights(self.folder / PACKAGE)).items()}
        config = AutoConfig.from_pretrained(str(self.folder))
        with no_init_weights():  # every matrix is loaded below; norms keep the ones or zeros they are built with
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
        state = model.state_dict()
        found = {}
        for name, tensor in state.items():
            stem = "model_" + name.replace(".", "_")
            if name.endswith(".bias"):  # by its layer's weight: equal biases share one const
                stem = "model_" + name.removesuffix(".bias").replace(".", "_") + "_weight:bias"
            if stem in dense:
                found[name] = torch.from_numpy(dense[stem].astype("float32")).reshape(tensor.shape)
        if config.tie_word_embeddings:
            found.pop("lm_head.weight", None)
        # An all-ones norm weight is gone from the program (coremltools removes a multiplication by one);
        # the new model's init of a multiplicative norm is those ones. A norm computed as (1 + w) (Gemma)
        # is folded into a const of another name: its weights cannot be found by name.
        missing = [n for n in state if n not in found and not (config.tie_word_embeddings and n == "lm_head.weight")]
        folded = [n for n in missing if state[n].ndim == 1 and "norm" in n and not bool((state[n] == 1).all())]
        if folded:
            raise UnsupportedModelError(f"{config.architectures[0]}: {FOLDED_NORMS}")
        missing = [n for n in missing if not (state[n].ndim == 1 and "norm" in n)]
        if missing:
            raise ArtifactError(f"{PACKAGE} lacks weights the exported config needs: {', '.join(missing[:3])}")
        model.load_state_dict(found, strict=False)
        if config.tie_word_embeddings:
            model.tie_weights()
        return model

    def logits(self, tokens: list[int]):
        import torch

        with torch.no_grad():
            return self.model(torch.tensor([tokens])).logits[0].numpy()

    def greedy(self, tokens: list[int], max_tokens: int) -> Iterator[int]:
        import torch

        with torch.no_grad():
            out = self.model.generate(
                torch.tensor([tokens]),
                attention_mask=torch.ones((1, len(tokens)), dtype=torch.long),
                max_new_tokens=max_tokens,
                do_sample=False,
                eos_token_id=sorted(self.text.stop_ids) or None,
                pad_token_id=self.text.tokenizer.pad_token_id or 0,
            )[0][len(tokens) :]
        for token in out.tolist():
            if token in self.text.stop_ids:
                return
            yield token

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        raise needs_macos()

    def serve(self, host: str, port: int, model: str, verify: Path | None = None) -> int:
        raise needs_macos()

    def close(self) -> None:
        self.__dict__.pop("model", None)


class CoreMLSession(_Scoring):
    """The package run by Core ML (macOS 15+), one prediction per step, its KV cache a Core ML state."""

    @property
    def runtime(self) -> str:
        from importlib.metadata import version

        return f"Core ML (coremltools {version('coremltools')} predict, macOS {platform.mac_ver()[0]})"

    @cached_property
    def model(self):
        require_toolchain("coremltools")
        import coremltools as ct

        return ct.models.MLModel(str(self.folder / PACKAGE))

    def step(self, state, tokens: list[int], past: int):
        """Logits of `tokens` appended after `past` cached tokens (float32, positions x vocab)."""
        import numpy as np

        n = len(tokens)
        mask = np.triu(np.full((n, past + n), -np.inf, dtype=np.float16), k=past + 1)[None, None]
        out = self.model.predict({INPUT_IDS: np.array([tokens], dtype=np.int32), CAUSAL_MASK: mask}, state=state)
        return out[LOGITS][0].astype(np.float32)

    def logits(self, tokens: list[int]):
        return self.step(self.model.make_state(), tokens, 0)

    def greedy(self, tokens: list[int], max_tokens: int) -> Iterator[int]:
        state = self.model.make_state()
        rows = self.step(state, tokens, 0)
        past = len(tokens)
        for _ in range(max_tokens):
            token = int(rows[-1].argmax())
            if token in self.text.stop_ids:
                return
            yield token
            rows = self.step(state, [token], past)
            past += 1

    def prompt_tokens(self, messages: list[dict[str, str]] | None, prompt: str) -> list[int]:
        if messages is None:
            return self.text.encode(prompt)
        if not self.text.tokenizer.chat_template:
            raise UsageError(f"{self.folder.name} has no chat template (a base model): send a completion instead")
        text = self.text.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.text.encode(text, special=False)

    def pieces(self, tokens: list[int], max_tokens: int, stream: bool) -> Iterator[str]:
        made: list[int] = []
        shown = ""
        for token in self.greedy(tokens, max_tokens):
            made.append(token)
            text = self.text.decode(made)
            if stream and not text.endswith("\ufffd"):
                yield text[len(shown) :]
                shown = text
        if not stream:
            yield self.text.decode(made)
        elif len(shown) < len(text := self.text.decode(made)):
            yield text[len(shown) :]

    def generate(self, prompt: str, max_tokens: int = 128, stream: bool = True, chat: bool = False) -> Iterator[str]:
        chat = chat and bool(self.text.tokenizer.chat_template)
        tokens = self.prompt_tokens([{"role": "user", "content": prompt}] if chat else None, prompt)
        return self.pieces(tokens, max_tokens, stream)

    def chat(self, messages: list[dict[str, str]], max_tokens: int = 128) -> Iterator[str]:
        return self.pieces(self.prompt_tokens(messages, ""), max_tokens, stream=True)

    def close(self) -> None:
        self.__dict__.pop("model", None)


def open_session(folder: Path) -> Session:
    """Core ML where it exists; the weights in PyTorch elsewhere."""
    return CoreMLSession(folder) if on_apple() else WeightsSession(folder)
